// Hand-written matchers for the word-splitting regexes of GPT-2, Llama 3 and Qwen 2 (the Split /
// ByteLevel pre-tokenizers), equivalent to the regexes but several times faster than running them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gpujob::text {

enum class WordPattern {
  kGpt2,    // 's|'t|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kLlama3,  // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|...
  kQwen2,   // as Llama 3 with single digits (\p{N})
};

// The matcher equivalent to `regex`, when it is one of the known patterns (exact text).
std::optional<WordPattern> recognize_word_pattern(const std::string& regex);
// The GPT-2 pattern's text (ByteLevel's use_regex).
const std::string& gpt2_word_regex();

// Every match of the pattern in `text` as [begin, end) byte ranges, like Regex::find_all. Whitespace
// is Unicode White_Space, letters and numbers the L and N general categories.
void find_words(WordPattern pattern, std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& out);

}  // namespace gpujob::text
