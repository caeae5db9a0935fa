#include "gpujob/text/sentencepiece_tokenizer.hpp"

#include <sentencepiece_processor.h>

#include "gpujob/text/added_vocabulary.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::text {

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path, TokenizerConfig config)
    : Tokenizer(std::move(config)), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()), path_(model_path) {
  auto status = sp_->Load(model_path);
  GPUJOB_CHECK(status.ok(), model_path, ": cannot load SentencePiece model: ", status.ToString());
  std::vector<AddedToken> added;
  for (const auto& [id, token] : config_.added_tokens) {
    added.push_back(token);
    if (token.special) special_ids_.insert(id);
  }
  // SentencePiece control symbols (<s>, </s>, ...) are special too.
  for (int id = 0; id < sp_->GetPieceSize(); ++id)
    if (sp_->IsControl(id)) special_ids_.insert(id);
  added_ = std::make_unique<AddedVocabulary>(added, false);
  // Defaults of HF's Llama-style SentencePiece tokenizers: BOS yes, EOS no.
  if (config_.bos_token.empty() && sp_->bos_id() >= 0) config_.bos_token = sp_->IdToPiece(sp_->bos_id());
  if (config_.eos_token.empty() && sp_->eos_id() >= 0) config_.eos_token = sp_->IdToPiece(sp_->eos_id());
  if (config_.unk_token.empty() && sp_->unk_id() >= 0) config_.unk_token = sp_->IdToPiece(sp_->unk_id());
  if (config_.pad_token.empty() && sp_->pad_id() >= 0) config_.pad_token = sp_->IdToPiece(sp_->pad_id());
  resolve_special_tokens();
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::size_t SentencePieceTokenizer::vocab_size() const {
  std::size_t n = static_cast<std::size_t>(sp_->GetPieceSize());
  for (const auto& [id, token] : config_.added_tokens) n = std::max(n, static_cast<std::size_t>(id) + 1);
  return n;
}

std::optional<int32_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  for (const auto& [id, t] : config_.added_tokens)
    if (t.content == token) return id;
  int id = sp_->PieceToId(std::string(token));
  // PieceToId answers unk for unknown pieces; only the unk piece itself maps there.
  if (id == sp_->unk_id() && token != sp_->IdToPiece(id)) return std::nullopt;
  return id;
}

std::string SentencePieceTokenizer::id_to_token(int32_t id) const {
  auto it = config_.added_tokens.find(id);
  if (it != config_.added_tokens.end()) return it->second.content;
  if (id < 0 || id >= sp_->GetPieceSize()) return "";
  return sp_->IdToPiece(id);
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens && config_.add_bos_token.value_or(true) && bos_id_) ids.push_back(*bos_id_);
  for (const TextSegment& s : added_->split(text)) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    std::vector<int> piece;
    auto status = sp_->Encode(std::string(text.substr(s.begin, s.end - s.begin)), &piece);
    GPUJOB_CHECK(status.ok(), path_, ": SentencePiece encode failed: ", status.ToString());
    ids.insert(ids.end(), piece.begin(), piece.end());
  }
  if (add_special_tokens && config_.add_eos_token.value_or(false) && eos_id_) ids.push_back(*eos_id_);
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string out;
  std::vector<int> run;  // consecutive model ids decode together (byte pieces join up)
  auto flush = [&]() {
    if (run.empty()) return;
    std::string piece;
    auto status = sp_->Decode(run, &piece);
    GPUJOB_CHECK(status.ok(), path_, ": SentencePiece decode failed: ", status.ToString());
    out += piece;
    run.clear();
  };
  for (int32_t id : ids) {
    auto it = config_.added_tokens.find(id);
    if (it != config_.added_tokens.end() || (id >= 0 && id < sp_->GetPieceSize() && sp_->IsControl(id))) {
      if (skip_special_tokens && special_ids_.count(id)) continue;
      flush();
      out += id_to_token(id);
      continue;
    }
    if (id >= 0 && id < sp_->GetPieceSize()) run.push_back(id);
  }
  flush();
  return out;
}

}  // namespace gpujob::text
