#include "gpujob/text/incremental_decoder.hpp"

#include "gpujob/text/utf8.hpp"

namespace gpujob::text {

namespace {
const std::string kReplacement = "\xEF\xBF\xBD";

bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, kReplacement) == 0;
}
}  // namespace

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens,
                                       std::vector<int32_t> context)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens), ids_(std::move(context)) {
  context_size_ = ids_.size();
  // Decoding starts a few tokens back so that decoders which treat the first token specially
  // (SentencePiece's leading space, Strip) see the new tokens in the middle of the text.
  prefix_offset_ = context_size_ > 5 ? context_size_ - 5 : 0;
  read_offset_ = context_size_;
}

std::string IncrementalDecoder::push(int32_t id) {
  ids_.push_back(id);
  return take_delta(false);
}

std::string IncrementalDecoder::finish() { return take_delta(true); }

std::string IncrementalDecoder::take_delta(bool final) {
  if (read_offset_ >= ids_.size()) return "";
  std::vector<int32_t> window(ids_.begin() + prefix_offset_, ids_.begin() + read_offset_);
  std::string before = tokenizer_.decode(window, skip_special_tokens_);
  window.assign(ids_.begin() + prefix_offset_, ids_.end());
  std::string after = tokenizer_.decode(window, skip_special_tokens_);
  // A trailing U+FFFD is (almost always) a character whose remaining bytes have not come yet.
  if (!final && (after.size() <= before.size() || ends_with_replacement(after))) return "";
  std::size_t common = 0;
  if (after.compare(0, before.size(), before) == 0) {
    common = before.size();
  } else {  // the decoder rewrote earlier text: emit from the last shared character boundary
    while (common < before.size() && common < after.size() && before[common] == after[common]) ++common;
    while (common > 0 && (static_cast<unsigned char>(after[common]) & 0xC0) == 0x80) --common;
  }
  std::string delta = after.substr(common);
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  text_ += delta;
  return delta;
}

}  // namespace gpujob::text
