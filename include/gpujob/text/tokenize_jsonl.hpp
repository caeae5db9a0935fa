// JSONL in, JSONL out: {"text": ...} lines to {"ids": [...]} lines and back, the core of
// `gpujob tokenize`.
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include "gpujob/text/tokenizer.hpp"

namespace gpujob::text {

struct TokenizeOptions {
  bool add_special_tokens = true;    // encode: BOS/EOS as HF tokenizer(text) adds them
  bool skip_special_tokens = false;  // decode: drop special tokens from the text
};

// One {"ids": [...]} line for `text`.
std::string ids_json_line(const Tokenizer& tokenizer, const std::string& text, const TokenizeOptions& options);

// Reads {"text": "..."} lines from `in` and writes one {"ids": [...]} line per input line (blank lines
// are skipped). `where` names the input in errors ("FILE:LINE: ..."). Returns the number of lines.
std::size_t encode_jsonl(const Tokenizer& tokenizer, std::istream& in, std::ostream& out, const std::string& where,
                         const TokenizeOptions& options);

// Reads {"ids": [...]} lines and writes {"text": "..."} lines.
std::size_t decode_jsonl(const Tokenizer& tokenizer, std::istream& in, std::ostream& out, const std::string& where,
                         const TokenizeOptions& options);

}  // namespace gpujob::text
