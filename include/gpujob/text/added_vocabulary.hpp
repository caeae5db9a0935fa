// Matching of added/special tokens in text before the model runs, with HF's leftmost-longest rule
// and its lstrip / rstrip / single_word flags.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gpujob/text/tokenizer.hpp"

namespace gpujob::text {

// A piece of input: either plain text (id < 0) or one added token.
struct TextSegment {
  std::size_t begin, end;  // byte range in the text that was split
  int32_t id;              // the added token's id, or -1 for text
};

class AddedVocabulary {
 public:
  // `tokens` with `normalized` equal to `normalized_set` are matched; the others are ignored.
  AddedVocabulary(const std::vector<AddedToken>& tokens, bool normalized_set);

  // Cuts `text` into text and token segments covering it in order.
  std::vector<TextSegment> split(std::string_view text) const;
  bool empty() const { return tokens_.empty(); }

 private:
  std::vector<AddedToken> tokens_;           // longest first within each first byte
  std::vector<std::vector<int>> by_first_;   // 256 buckets of indices into tokens_
  bool first_byte_[256] = {};                // whether any token starts with the byte
};

}  // namespace gpujob::text
