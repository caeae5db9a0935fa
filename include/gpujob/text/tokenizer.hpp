// The tokenizer interface (encode, decode, special tokens, chat template) and load_tokenizer, which
// picks tokenizer.json (HF pipeline) or tokenizer.model (SentencePiece) from a checkpoint folder.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace gpujob::text {

// A token matched in raw text before the model runs (HF "added tokens").
struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = true;       // skipped by decode(..., skip_special_tokens=true)
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // only matches between non-word characters
  bool normalized = false;   // matched in normalized text instead of raw text
};

// What tokenizer_config.json, special_tokens_map.json and added_tokens.json say.
struct TokenizerConfig {
  std::string bos_token, eos_token, pad_token, unk_token;  // empty when not set
  std::optional<bool> add_bos_token, add_eos_token;        // unset: the file did not say
  // Read for completeness: transformers 5 no longer applies it in decode, so neither does gpujob.
  bool clean_up_tokenization_spaces = false;
  std::string tokenizer_class;  // e.g. "LlamaTokenizer"; empty when not given
  std::optional<bool> legacy;   // Llama-style SentencePiece handling of spaces after special tokens
  std::string chat_template;  // Jinja source, empty when the checkpoint has none
  std::vector<std::string> additional_special_tokens;
  std::map<int32_t, AddedToken> added_tokens;  // added_tokens_decoder and added_tokens.json
};

// Reads the optional JSON files next to a tokenizer; a missing file leaves defaults.
TokenizerConfig read_tokenizer_config(const std::string& model_dir);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // HF tokenizer(text)["input_ids"]: added tokens matched first, then the model, then (with
  // add_special_tokens) the post-processor's BOS/EOS.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const = 0;
  // HF tokenizer.decode(ids, skip_special_tokens=...). Invalid UTF-8 becomes U+FFFD.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const = 0;

  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  // The token's string (byte-level stand-ins or ▁ included); empty for unknown ids.
  virtual std::string id_to_token(int32_t id) const = 0;
  // HF len(tokenizer): model vocabulary plus added tokens (one past the largest id).
  virtual std::size_t vocab_size() const = 0;

  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  std::optional<int32_t> pad_id() const { return pad_id_; }
  std::optional<int32_t> unk_id() const { return unk_id_; }
  // Ids of all special tokens (added tokens marked special, bos/eos/pad/unk, additional ones).
  const std::set<int32_t>& special_ids() const { return special_ids_; }
  bool is_special(int32_t id) const { return special_ids_.count(id) > 0; }
  const TokenizerConfig& config() const { return config_; }
  const std::string& chat_template() const { return config_.chat_template; }

 protected:
  explicit Tokenizer(TokenizerConfig config) : config_(std::move(config)) {}
  // Resolves bos/eos/pad/unk names and the special set once the vocabulary is known.
  void resolve_special_tokens();

  TokenizerConfig config_;
  std::optional<int32_t> bos_id_, eos_id_, pad_id_, unk_id_;
  std::set<int32_t> special_ids_;
};

// Loads the tokenizer of a checkpoint folder: tokenizer.json when present, else tokenizer.model.
// Throws gpujob::Error naming the folder when neither exists or a file is malformed.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir);

}  // namespace gpujob::text
