// Chat-template renderers against HF apply_chat_template(tokenize=False) renderings
// (tests/data/tokenizers/chat, made by tests/golden/make_tokenizer_fixtures.py) and against the
// real Qwen 3 template in ../shared.
#include <fstream>
#include <set>
#include <sstream>

#include "fixtures.hpp"
#include "gpujob/text/chat_template.hpp"
#include "gpujob/util/error.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::text;
namespace fs = std::filesystem;

namespace {
std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<ChatMessage> messages_of(const nlohmann::json& list) {
  std::vector<ChatMessage> out;
  for (const auto& m : list) {
    ChatMessage msg{m.at("role").get<std::string>(), m.at("content").get<std::string>(), std::nullopt};
    if (m.contains("reasoning_content")) msg.reasoning_content = m["reasoning_content"].get<std::string>();
    out.push_back(msg);
  }
  return out;
}

// The BOS token of the fixture tokenizer that rendered a template (older case files lack the field).
std::string bos_of(const std::string& template_name) {
  std::string kind = template_name.rfind("gemma", 0) == 0 ? "gemma" : template_name.rfind("llama", 0) == 0 ? "llama3" : "qwen2";
  fs::path p = testing::fixture_dir() / kind / "tokenizer_config.json";
  if (!fs::exists(p)) return "";
  auto config = nlohmann::json::parse(read_file(p));
  return config.contains("bos_token") && config["bos_token"].is_string() ? config["bos_token"].get<std::string>() : "";
}

std::string qwen3_template() {
  fs::path p = testing::shared_tokenizers() / "qwen" / "qwen3-derived" / "tokenizer_config.json";
  if (!fs::exists(p)) return "";
  return nlohmann::json::parse(read_file(p)).at("chat_template").get<std::string>();
}
}  // namespace

TEST_CASE("Chat renderings equal HF apply_chat_template", "[text][chat]") {
  fs::path dir = testing::fixture_dir() / "chat";
  if (!fs::exists(dir / "cases.jsonl")) {
    WARN("SKIP: " << dir / "cases.jsonl" << " not found (run tests/golden/make_tokenizer_fixtures.py)");
    return;
  }
  auto cases = testing::read_jsonl(dir / "cases.jsonl");
  REQUIRE(cases.size() > 20);
  std::set<std::string> seen;
  for (const auto& c : cases) {
    const std::string name = c.at("template").get<std::string>();
    seen.insert(name);
    ChatTemplate tpl = ChatTemplate::from_source(read_file(dir / "templates" / (name + ".jinja")), name);
    ChatOptions options;
    options.add_generation_prompt = c.at("add_generation_prompt").get<bool>();
    if (c.contains("enable_thinking")) options.enable_thinking = c["enable_thinking"].get<bool>();
    options.bos_token = c.contains("bos_token") ? c["bos_token"].get<std::string>() : bos_of(name);
    auto messages = messages_of(c.at("messages"));
    INFO("template " << name << ", case " << c.dump());
    if (c.contains("error")) {
      CHECK_THROWS_AS(tpl.render(messages, options), gpujob::Error);
    } else {
      CHECK(tpl.render(messages, options) == c.at("rendered").get<std::string>());
    }
  }
  CHECK(seen.count("gemma3"));
  CHECK(seen.count("llama3"));
  CHECK(seen.count("llama3.1"));
}

TEST_CASE("Templates are recognized by their markers", "[text][chat]") {
  fs::path dir = testing::fixture_dir() / "chat" / "templates";
  if (fs::exists(dir)) {
    CHECK(ChatTemplate::from_source(read_file(dir / "gemma3.jinja"), "gemma3").format() == ChatFormat::kGemma);
    CHECK(ChatTemplate::from_source(read_file(dir / "llama3.jinja"), "llama3").format() == ChatFormat::kLlama3);
    CHECK(ChatTemplate::from_source(read_file(dir / "llama3.1.jinja"), "llama3.1").format() == ChatFormat::kLlama31);
    if (fs::exists(dir / "qwen2.5.jinja")) {
      auto t = ChatTemplate::from_source(read_file(dir / "qwen2.5.jinja"), "qwen2.5");
      CHECK(t.format() == ChatFormat::kChatML);
      CHECK(t.default_system() == "You are a helpful assistant.");
    }
  } else {
    WARN("SKIP: " << dir << " not found (run tests/golden/make_tokenizer_fixtures.py)");
  }
  CHECK_THROWS_AS(ChatTemplate::from_source("{{ messages[0]['content'] }}", "x.json"), gpujob::Error);
  CHECK_THROWS_AS(ChatTemplate::from_name("vicuna"), gpujob::Error);
  CHECK(ChatTemplate::from_name("qwen3").format() == ChatFormat::kQwen3);
}

TEST_CASE("Qwen 3's real template: enable_thinking and history thinking", "[text][chat]") {
  std::string source = qwen3_template();
  if (source.empty()) {
    WARN("SKIP: ../shared/data/tokenizers/qwen/qwen3-derived not found");
    return;
  }
  ChatTemplate tpl = ChatTemplate::from_source(source, "qwen3-derived");
  REQUIRE(tpl.format() == ChatFormat::kQwen3);
  std::vector<ChatMessage> chat = {{"system", "Be brief.", std::nullopt},
                                   {"user", "2+2?", std::nullopt},
                                   {"assistant", "<think>\nadd\n</think>\n\n4", std::nullopt},
                                   {"user", "3+3?", std::nullopt}};
  ChatOptions options;
  // Reference strings rendered from this template with Jinja2 (trim_blocks, lstrip_blocks), as HF does:
  // earlier turns lose their thinking, enable_thinking=false appends an empty think block.
  const std::string history =
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
      "<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n";
  CHECK(tpl.render(chat, options) == history);
  options.enable_thinking = true;
  CHECK(tpl.render(chat, options) == history);
  options.enable_thinking = false;
  CHECK(tpl.render(chat, options) == history + "<think>\n\n</think>\n\n");
  // The last assistant turn after the last query keeps its thinking.
  chat.pop_back();
  options.add_generation_prompt = false;
  CHECK(tpl.render(chat, options) ==
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nadd\n</think>\n\n4<|im_end|>\n");
}

TEST_CASE("Gemma enforces alternating roles like its template", "[text][chat]") {
  ChatTemplate tpl = ChatTemplate::from_name("gemma");
  ChatOptions options;
  options.bos_token = "<bos>";
  CHECK(tpl.render({{"user", " hi ", std::nullopt}}, options) == "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n");
  CHECK_THROWS_AS(tpl.render({{"user", "a", std::nullopt}, {"user", "b", std::nullopt}}, options), gpujob::Error);
}
