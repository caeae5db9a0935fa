#include "gpujob/text/hf_tokenizer.hpp"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "gpujob/text/added_vocabulary.hpp"
#include "gpujob/text/bpe_model.hpp"
#include "gpujob/text/decoder.hpp"
#include "gpujob/text/normalizer.hpp"
#include "gpujob/text/pre_tokenizer.hpp"
#include "gpujob/text/utf8.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::text {

namespace {
nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GPUJOB_CHECK(in.good(), path, ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
}

// The single-sequence template of a post-processor as a list of steps: a list of ids to emit,
// or an empty list standing for the encoded text. Returns false when it adds nothing.
bool read_post_processor(const nlohmann::json& spec, const std::string& where,
                         std::vector<std::vector<int32_t>>& steps) {
  if (spec.is_null()) return false;
  const std::string type = spec.value("type", "");
  if (type == "Sequence") {
    bool any = false;
    for (const auto& p : spec.at("processors")) {
      std::vector<std::vector<int32_t>> sub;
      if (read_post_processor(p, where, sub)) {
        GPUJOB_CHECK(!any, where, ": post_processor Sequence with two templates is not supported");
        steps = std::move(sub);
        any = true;
      }
    }
    return any;
  }
  if (type == "ByteLevel") return false;  // only changes offsets
  if (type == "TemplateProcessing") {
    const auto& specials = spec.at("special_tokens");
    for (const auto& piece : spec.at("single")) {
      if (piece.contains("Sequence")) {
        GPUJOB_CHECK(piece["Sequence"].at("id").get<std::string>() == "A", where,
                     ": post_processor single template refers to sequence ", piece["Sequence"].at("id"));
        steps.push_back({});
      } else {
        const std::string name = piece.at("SpecialToken").at("id").get<std::string>();
        GPUJOB_CHECK(specials.contains(name), where, ": post_processor special token '", name,
                     "' is missing from special_tokens");
        steps.push_back(specials[name].at("ids").get<std::vector<int32_t>>());
      }
    }
    return true;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    steps.push_back({spec.at("cls").at(1).get<int32_t>()});
    steps.push_back({});
    steps.push_back({spec.at("sep").at(1).get<int32_t>()});
    return true;
  }
  fail(where, ": post_processor type '", type,
       "' is not supported (expected TemplateProcessing, ByteLevel, Bert/RobertaProcessing or Sequence)");
}
// The decoder of Llama-style SentencePiece tokenizers: ▁ back to spaces, <0xXX> bytes, and the
// space of the first word dropped.
const char* kLlamaDecoder = R"({"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
    {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})";

bool uses_llama_non_legacy_pipeline(const TokenizerConfig& config, const nlohmann::json& model) {
  const bool llama_class = config.tokenizer_class == "LlamaTokenizer" || config.tokenizer_class == "LlamaTokenizerFast";
  return llama_class && config.legacy.has_value() && !*config.legacy && model.value("byte_fallback", false);
}
}  // namespace

HfTokenizer::HfTokenizer(const std::string& json_path, TokenizerConfig config) : Tokenizer(std::move(config)) {
  nlohmann::json doc = read_json(json_path);
  try {
    model_ = std::make_unique<BpeModel>(doc.at("model"), json_path);
    normalizer_ = Normalizer::from_json(doc.value("normalizer", nlohmann::json()), json_path);
    pre_tokenizer_ = PreTokenizer::from_json(doc.value("pre_tokenizer", nlohmann::json()), json_path);
    decoder_ = Decoder::from_json(doc.value("decoder", nlohmann::json()), json_path);
    has_template_ = read_post_processor(doc.value("post_processor", nlohmann::json()), json_path, template_);
    vocab_size_ = model_->size();
    if (uses_llama_non_legacy_pipeline(config_, doc.at("model"))) {
      // transformers' LlamaTokenizer with legacy=false keeps only the vocabulary and merges of the
      // file and builds its own space handling: "▁" for spaces, one "▁" prepended at the start of
      // the text only (not after special tokens), and the SentencePiece decoder.
      normalizer_ = Normalizer::from_json(nullptr, json_path);
      pre_tokenizer_ = PreTokenizer::from_json(
          {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}, {"split", false}}, json_path);
      decoder_ = Decoder::from_json(nlohmann::json::parse(kLlamaDecoder), json_path);
    }
    for (const auto& t : doc.value("added_tokens", nlohmann::json::array())) {
      AddedToken a;
      a.content = t.at("content").get<std::string>();
      a.id = t.at("id").get<int32_t>();
      a.special = t.value("special", false);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      a.single_word = t.value("single_word", false);
      a.normalized = t.value("normalized", !a.special);
      added_by_id_[a.id] = added_.size();
      added_.push_back(a);
      vocab_size_ = std::max(vocab_size_, static_cast<std::size_t>(a.id) + 1);
    }
  } catch (const nlohmann::json::exception& e) {
    fail(json_path, ": unexpected layout: ", e.what());
  }
  // Tokens only tokenizer_config.json knows of (added after tokenizer.json was written).
  for (const auto& [id, token] : config_.added_tokens) {
    if (added_by_id_.count(id)) continue;
    added_by_id_[id] = added_.size();
    added_.push_back(token);
    vocab_size_ = std::max(vocab_size_, static_cast<std::size_t>(id) + 1);
  }
  raw_added_ = std::make_unique<AddedVocabulary>(added_, false);
  normalized_added_ = std::make_unique<AddedVocabulary>(added_, true);
  for (const AddedToken& a : added_)
    if (a.special) special_ids_.insert(a.id);
  resolve_special_tokens();
}

HfTokenizer::~HfTokenizer() = default;

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  for (const AddedToken& a : added_)
    if (a.content == token) return a.id;
  return model_->token_to_id(token);
}

std::string HfTokenizer::id_to_token(int32_t id) const {
  auto it = added_by_id_.find(id);
  if (it != added_by_id_.end()) return added_[it->second].content;
  return model_->id_to_token(id);
}

void HfTokenizer::encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const {
  std::string normalized = normalizer_->empty() ? std::string(text) : normalizer_->normalize(text);
  thread_local WordList words;  // reused: splitting then allocates nothing per word
  auto pre_tokenize = [&](std::string_view piece, bool piece_at_start) {
    words.clear();
    pre_tokenizer_->split(piece, piece_at_start, words);
    for (std::size_t i = 0; i < words.size(); ++i) model_->encode_word(words[i], out);
  };
  if (normalized_added_->empty()) {
    pre_tokenize(normalized, at_start);
    return;
  }
  for (const TextSegment& s : normalized_added_->split(normalized)) {
    if (s.id >= 0) out.push_back(s.id);
    else pre_tokenize(std::string_view(normalized).substr(s.begin, s.end - s.begin), at_start && s.begin == 0);
  }
}

std::vector<int32_t> HfTokenizer::encode(std::string_view input, bool add_special_tokens) const {
  // HF strings are always valid UTF-8; the regexes rely on it.
  std::string repaired;
  if (!is_valid_utf8(input)) {
    repaired = utf8_lossy(input);
    input = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(input.size() / 3 + 4);
  for (const TextSegment& s : raw_added_->split(input)) {
    if (s.id >= 0) ids.push_back(s.id);
    else encode_text(input.substr(s.begin, s.end - s.begin), s.begin == 0, ids);
  }
  if (!add_special_tokens || !has_template_) return ids;
  std::vector<int32_t> out;
  out.reserve(ids.size() + 4);
  for (const auto& step : template_) {
    if (step.empty()) out.insert(out.end(), ids.begin(), ids.end());
    else out.insert(out.end(), step.begin(), step.end());
  }
  return out;
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto it = added_by_id_.find(id);
    if (it != added_by_id_.end()) {
      if (skip_special_tokens && added_[it->second].special) continue;
      tokens.push_back(added_[it->second].content);
      continue;
    }
    const std::string& t = model_->id_to_token(id);
    if (t.empty()) continue;  // HF drops ids it does not know
    if (skip_special_tokens && special_ids_.count(id)) continue;
    tokens.push_back(t);
  }
  return decoder_->decode(std::move(tokens));
}

}  // namespace gpujob::text
