// Incremental decoding: the pieces returned token by token add up to the full decode, and none of
// them ends inside a multi-byte character.
#include "fixtures.hpp"
#include "gpujob/text/incremental_decoder.hpp"
#include "gpujob/text/utf8.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::text;
namespace fs = std::filesystem;

namespace {
const std::vector<std::string> kTexts = {
    "Hello world, this is a test.",
    "我想在apple工作1314151天～ 中文分词测试",
    "🚀 (normal) 😶‍🌫️ (multiple emojis) 👨‍👩‍👧‍👦 family",
    "नमस्ते दुनिया, ภาษาไทย, مرحبا",
    "   leading spaces\n\n\tand tabs  ",
    "<|im_start|>user\nHi<|im_end|> after special",
};

void check_tokenizer(const Tokenizer& tok) {
  for (const std::string& text : kTexts) {
    for (bool skip : {false, true}) {
      auto ids = tok.encode(text, false);
      IncrementalDecoder dec(tok, skip);
      std::string joined;
      for (int32_t id : ids) {
        std::string piece = dec.push(id);
        INFO("text '" << text << "' piece '" << piece << "'");
        CHECK(is_valid_utf8(piece));
        CHECK(piece.find("\xEF\xBF\xBD") == std::string::npos);  // never a half character
        joined += piece;
      }
      joined += dec.finish();
      CHECK(joined == tok.decode(ids, skip));
      CHECK(dec.text() == joined);
      CHECK(dec.size() == ids.size());
    }
    // With the first half as context, only the second half's text comes out.
    auto ids = tok.encode(text, false);
    std::size_t half = ids.size() / 2;
    IncrementalDecoder dec(tok, false, std::vector<int32_t>(ids.begin(), ids.begin() + half));
    std::string tail;
    for (std::size_t i = half; i < ids.size(); ++i) tail += dec.push(ids[i]);
    tail += dec.finish();
    std::string full = tok.decode(ids), head = tok.decode(std::vector<int32_t>(ids.begin(), ids.begin() + half));
    if (full.compare(0, head.size(), head) == 0 && head.find("\xEF\xBF\xBD") == std::string::npos)
      CHECK(tail == full.substr(head.size()));
  }
}
}  // namespace

TEST_CASE("Incremental decode with byte-level BPE (Qwen2.5)", "[text][decode]") {
  fs::path dir = testing::shared_tokenizers() / "qwen" / "qwen2.5-0.5b";
  if (!fs::exists(dir / "tokenizer.json")) {
    WARN("SKIP: " << dir << " not found");
    return;
  }
  check_tokenizer(*load_tokenizer(dir.string()));
}

TEST_CASE("Incremental decode with every fixture tokenizer", "[text][decode][fixtures]") {
  fs::path root = testing::fixture_dir();
  if (!fs::exists(root / "corpus.jsonl")) {
    WARN("SKIP: " << root << " has no fixtures yet (run tests/golden/make_tokenizer_fixtures.py)");
    return;
  }
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!fs::exists(entry.path() / "expected.jsonl")) continue;
    SECTION(entry.path().filename().string()) { check_tokenizer(*load_tokenizer(entry.path().string())); }
  }
}

TEST_CASE("A split UTF-8 character is held back until complete", "[text][decode]") {
  fs::path dir = testing::shared_tokenizers() / "gpt2";
  if (!fs::exists(dir / "tokenizer.json")) {
    WARN("SKIP: " << dir << " not found");
    return;
  }
  auto tok = load_tokenizer(dir.string());
  // GPT-2 has no token for 🦙: its four bytes come as several byte tokens.
  auto ids = tok->encode("🦙", false);
  REQUIRE(ids.size() >= 2);
  IncrementalDecoder dec(*tok);
  for (std::size_t i = 0; i + 1 < ids.size(); ++i) CHECK(dec.push(ids[i]).empty());
  CHECK(dec.push(ids.back()) == "🦙");
  // Unfinished bytes at the end come out as U+FFFD only on finish().
  IncrementalDecoder cut(*tok);
  CHECK(cut.push(ids[0]).empty());
  CHECK(cut.finish() == tok->decode({ids[0]}));
}
