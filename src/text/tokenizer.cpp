#include "gpujob/text/tokenizer.hpp"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "gpujob/text/hf_tokenizer.hpp"
#include "gpujob/text/sentencepiece_tokenizer.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::text {

namespace fs = std::filesystem;

namespace {
nlohmann::json read_optional_json(const fs::path& path) {
  if (!fs::exists(path)) return nlohmann::json();
  std::ifstream in(path, std::ios::binary);
  GPUJOB_CHECK(in.good(), path.string(), ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path.string(), ": invalid JSON: ", e.what());
  }
}

// A token given as "text" or as {"content": "text", ...}; empty for null.
std::string token_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return "";
}
}  // namespace

TokenizerConfig read_tokenizer_config(const std::string& model_dir) {
  TokenizerConfig c;
  const fs::path dir(model_dir);
  const fs::path config_path = dir / "tokenizer_config.json";
  nlohmann::json config = read_optional_json(config_path);
  nlohmann::json map = read_optional_json(dir / "special_tokens_map.json");
  try {
    for (const nlohmann::json* source : {&map, &config}) {  // tokenizer_config.json wins
      if (!source->is_object()) continue;
      const auto& s = *source;
      if (s.contains("bos_token")) c.bos_token = token_text(s["bos_token"]);
      if (s.contains("eos_token")) c.eos_token = token_text(s["eos_token"]);
      if (s.contains("pad_token")) c.pad_token = token_text(s["pad_token"]);
      if (s.contains("unk_token")) c.unk_token = token_text(s["unk_token"]);
      if (s.contains("additional_special_tokens") && s["additional_special_tokens"].is_array()) {
        c.additional_special_tokens.clear();
        for (const auto& t : s["additional_special_tokens"]) c.additional_special_tokens.push_back(token_text(t));
      }
    }
    if (config.is_object()) {
      if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean())
        c.add_bos_token = config["add_bos_token"].get<bool>();
      if (config.contains("add_eos_token") && config["add_eos_token"].is_boolean())
        c.add_eos_token = config["add_eos_token"].get<bool>();
      if (config.contains("clean_up_tokenization_spaces") && config["clean_up_tokenization_spaces"].is_boolean())
        c.clean_up_tokenization_spaces = config["clean_up_tokenization_spaces"].get<bool>();
      if (config.contains("tokenizer_class") && config["tokenizer_class"].is_string())
        c.tokenizer_class = config["tokenizer_class"].get<std::string>();
      if (config.contains("legacy") && config["legacy"].is_boolean()) c.legacy = config["legacy"].get<bool>();
      if (config.contains("chat_template")) {
        const auto& t = config["chat_template"];
        if (t.is_string()) {
          c.chat_template = t.get<std::string>();
        } else if (t.is_array()) {  // named templates: take "default"
          for (const auto& named : t)
            if (named.value("name", "") == "default") c.chat_template = named.at("template").get<std::string>();
        }
      }
      if (config.contains("added_tokens_decoder")) {
        for (auto it = config["added_tokens_decoder"].begin(); it != config["added_tokens_decoder"].end(); ++it) {
          AddedToken a;
          a.id = std::stoi(it.key());
          const auto& v = it.value();
          a.content = v.at("content").get<std::string>();
          a.special = v.value("special", false);
          a.lstrip = v.value("lstrip", false);
          a.rstrip = v.value("rstrip", false);
          a.single_word = v.value("single_word", false);
          a.normalized = v.value("normalized", !a.special);
          c.added_tokens[a.id] = a;
        }
      }
    }
  } catch (const std::exception& e) {
    fail(config_path.string(), ": unexpected layout: ", e.what());
  }
  nlohmann::json added = read_optional_json(dir / "added_tokens.json");
  if (added.is_object()) {
    for (auto it = added.begin(); it != added.end(); ++it) {
      int32_t id = it.value().get<int32_t>();
      if (c.added_tokens.count(id)) continue;
      AddedToken a;
      a.id = id;
      a.content = it.key();
      a.special = false;
      c.added_tokens[id] = a;
    }
  }
  // Special tokens named in the config are special even if added_tokens.json says nothing.
  for (auto& [id, a] : c.added_tokens) {
    for (const std::string* name : {&c.bos_token, &c.eos_token, &c.pad_token, &c.unk_token})
      if (a.content == *name) a.special = true;
    for (const std::string& name : c.additional_special_tokens)
      if (a.content == name) a.special = true;
  }
  return c;
}

void Tokenizer::resolve_special_tokens() {
  auto lookup = [&](const std::string& name) -> std::optional<int32_t> {
    if (name.empty()) return std::nullopt;
    return token_to_id(name);
  };
  bos_id_ = lookup(config_.bos_token);
  eos_id_ = lookup(config_.eos_token);
  pad_id_ = lookup(config_.pad_token);
  unk_id_ = lookup(config_.unk_token);
  for (const auto& id : {bos_id_, eos_id_, pad_id_, unk_id_})
    if (id) special_ids_.insert(*id);
  for (const std::string& name : config_.additional_special_tokens)
    if (auto id = lookup(name)) special_ids_.insert(*id);
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir) {
  const fs::path dir(model_dir);
  GPUJOB_CHECK(fs::is_directory(dir), model_dir, ": tokenizer folder does not exist");
  TokenizerConfig config = read_tokenizer_config(model_dir);
  if (fs::exists(dir / "tokenizer.json"))
    return std::make_unique<HfTokenizer>((dir / "tokenizer.json").string(), std::move(config));
  if (fs::exists(dir / "tokenizer.model"))
    return std::make_unique<SentencePieceTokenizer>((dir / "tokenizer.model").string(), std::move(config));
  fail(model_dir, ": no tokenizer.json or tokenizer.model found");
}

}  // namespace gpujob::text
