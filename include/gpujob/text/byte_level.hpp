// GPT-2's byte <-> printable-character table, shared by the ByteLevel pre-tokenizer and decoder.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace gpujob::text {

// UTF-8 of the printable stand-in for each byte (e.g. ' ' -> "Ġ", '\n' -> "Ċ").
const std::array<std::string, 256>& byte_to_unicode();

// Maps each byte of `bytes` to its stand-in and appends the result to `out`.
void byte_level_encode(std::string_view bytes, std::string& out);

// The byte a stand-in code point represents, or -1 when `cp` is not a stand-in.
int unicode_to_byte(char32_t cp);

}  // namespace gpujob::text
