// A tokenizer.json pipeline (added tokens, normalizer, pre-tokenizer, BPE, post-processor,
// decoder) that reproduces HF tokenizers' encode and decode.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gpujob/text/tokenizer.hpp"

namespace gpujob::text {

class AddedVocabulary;
class BpeModel;
class Decoder;
class Normalizer;
class PreTokenizer;

class HfTokenizer final : public Tokenizer {
 public:
  // Reads `json_path` (tokenizer.json); `config` comes from read_tokenizer_config.
  HfTokenizer(const std::string& json_path, TokenizerConfig config);
  ~HfTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  std::size_t vocab_size() const override { return vocab_size_; }

 private:
  // Encodes one piece of text between added tokens (normalize, then normalized added tokens,
  // then pre-tokenize and BPE).
  void encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const;

  std::vector<AddedToken> added_;
  std::map<int32_t, std::size_t> added_by_id_;  // index into added_
  std::unique_ptr<AddedVocabulary> raw_added_, normalized_added_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<std::vector<int32_t>> template_;  // post-processor for one sequence: ids, {} = the text
  bool has_template_ = false;
  std::size_t vocab_size_ = 0;
};

}  // namespace gpujob::text
