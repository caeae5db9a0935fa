// Every tokenizer kind made by tests/golden/make_tokenizer_fixtures.py (GPT-2, Llama 3, Qwen 2,
// Gemma, Llama 2 and Metaspace styles, SentencePiece BPE and unigram models) and the real GPT-2 and
// Qwen2.5 vocabularies: encode and decode identical to HF on the whole multi-script corpus.
#include <set>

#include "fixtures.hpp"
#include "gpujob/text/tokenizer.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::text;
namespace fs = std::filesystem;

namespace {
std::vector<int32_t> ids_of(const nlohmann::json& v) { return v.get<std::vector<int32_t>>(); }

// Compares one expected.jsonl with the tokenizer in `model_dir`.
void check_expected(const fs::path& model_dir, const fs::path& expected, bool sentencepiece) {
  auto tok = load_tokenizer(model_dir.string());
  auto rows = testing::read_jsonl(expected);
  REQUIRE(rows.size() > 40);
  for (const auto& row : rows) {
    const std::string text = row.at("text").get<std::string>();
    INFO(model_dir.filename().string() << ": text '" << text << "'");
    if (sentencepiece) {
      // libsentencepiece's own encoding with BOS, as HF's SentencePiece-backed tokenizers give.
      auto ids = ids_of(row.at("ids_sentencepiece"));
      CHECK(tok->encode(text) == ids);
      CHECK(tok->decode(std::vector<int32_t>(ids.begin() + 1, ids.end())) ==
            row.at("decoded_sentencepiece").get<std::string>());
      continue;
    }
    auto ids = ids_of(row.at("ids"));
    CHECK(tok->encode(text) == ids);
    if (row.contains("ids_plain")) CHECK(tok->encode(text, false) == ids_of(row["ids_plain"]));
    CHECK(tok->decode(ids) == row.at("decoded").get<std::string>());
    CHECK(tok->decode(ids, true) == row.at("decoded_skip").get<std::string>());
  }
}
}  // namespace

TEST_CASE("Fixture tokenizers encode and decode like HF", "[text][tokenizer][fixtures]") {
  fs::path root = testing::fixture_dir();
  if (!fs::exists(root / "corpus.jsonl")) {
    WARN("SKIP: " << root << " has no fixtures yet (run tests/golden/make_tokenizer_fixtures.py)");
    return;
  }
  std::set<std::string> kinds;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!fs::exists(entry.path() / "expected.jsonl")) continue;
    const std::string kind = entry.path().filename().string();
    kinds.insert(kind);
    SECTION(kind) { check_expected(entry.path(), entry.path() / "expected.jsonl", kind.rfind("sp_", 0) == 0); }
  }
  // The byte-level and SentencePiece-style families must all be there.
  for (const char* kind : {"gpt2", "llama3", "qwen2", "gemma"}) CHECK(kinds.count(kind));
}

TEST_CASE("Real GPT-2 and Qwen2.5 vocabularies over the fixture corpus", "[text][tokenizer][fixtures]") {
  fs::path real = testing::fixture_dir() / "real";
  const std::pair<const char*, const char*> cases[] = {{"gpt2", "gpt2"}, {"qwen2.5", "qwen/qwen2.5-0.5b"}};
  for (const auto& [name, folder] : cases) {
    fs::path expected = real / (std::string(name) + ".jsonl"), dir = testing::shared_tokenizers() / folder;
    if (!fs::exists(expected) || !fs::exists(dir / "tokenizer.json")) {
      WARN("SKIP: " << expected << " or " << dir << " not found");
      continue;
    }
    SECTION(name) { check_expected(dir, expected, false); }
  }
}
