// A compiled PCRE2 pattern in UTF + UCP mode (so \p{L}, \s and (?i) follow Unicode, as in HF's
// Rust regexes), JIT-compiled when available, for the tokenizers' Split pre-tokenizers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gpujob::text {

class Regex {
 public:
  // `literal` treats the pattern as plain text (HF's {"String": ...} patterns).
  explicit Regex(const std::string& pattern, bool literal = false);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Every non-overlapping, non-empty match of the pattern in `text` as [begin, end) byte ranges.
  std::vector<std::pair<std::size_t, std::size_t>> find_all(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace gpujob::text
