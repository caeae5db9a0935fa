// UTF-8 helpers for the tokenizers: code point iteration, encoding, validity of a byte prefix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gpujob::text {

// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for invalid lead bytes, so that
// iteration always advances).
inline std::size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

// Decodes the code point at text[pos] and advances pos; invalid bytes decode as U+FFFD.
char32_t next_code_point(std::string_view text, std::size_t& pos);

// Appends the UTF-8 encoding of `cp` to `out`.
void append_utf8(std::string& out, char32_t cp);

// Whether `text` is entirely valid UTF-8.
bool is_valid_utf8(std::string_view text);

// Converts bytes to text the way Rust's String::from_utf8_lossy does (HF decoders use it): each
// maximal invalid subsequence becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Python's str.isspace() for one code point (what Jinja's `trim` and str.strip() remove).
bool is_python_space(char32_t cp);

// Rust's char::is_whitespace (the White_Space property), used by HF's lstrip/rstrip on added tokens.
bool is_unicode_white_space(char32_t cp);

}  // namespace gpujob::text
