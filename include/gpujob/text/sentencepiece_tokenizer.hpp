// A SentencePiece tokenizer.model (through libsentencepiece), with added tokens from
// tokenizer_config.json matched first and BOS/EOS as add_bos_token / add_eos_token say.
#pragma once

#include <memory>
#include <string>

#include "gpujob/text/tokenizer.hpp"


namespace gpujob::text {

class AddedVocabulary;

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::string& model_path, TokenizerConfig config);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  std::size_t vocab_size() const override;

 private:
  class Processor;  // libsentencepiece, reached through gpujob's isolated module (see the .cpp)
  std::unique_ptr<Processor> sp_;
  std::unique_ptr<AddedVocabulary> added_;
  std::string path_;
};

}  // namespace gpujob::text
