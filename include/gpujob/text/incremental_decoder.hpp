// Incremental decoding of a growing token sequence (generation, stop strings): each push returns
// only newly completed text and never a partial multi-byte UTF-8 character.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gpujob/text/tokenizer.hpp"

namespace gpujob::text {

class IncrementalDecoder {
 public:
  // `tokenizer` must outlive the decoder. `context` are ids already shown (e.g. the prompt's last
  // tokens): they give the first new token its leading space right, and are never returned.
  explicit IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = true,
                              std::vector<int32_t> context = {});

  // Adds one id; returns the text it completes (empty while a character is still incomplete).
  std::string push(int32_t id);
  // Returns whatever is still held back (an incomplete character decodes as U+FFFD).
  std::string finish();

  // All text returned so far, and all ids pushed (context excluded).
  const std::string& text() const { return text_; }
  std::size_t size() const { return ids_.size() - context_size_; }

 private:
  std::string take_delta(bool final);

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  std::size_t context_size_;
  std::size_t prefix_offset_ = 0;  // start of the window decoded for context
  std::size_t read_offset_ = 0;    // ids before this are already returned as text
  std::string text_;
};

}  // namespace gpujob::text
