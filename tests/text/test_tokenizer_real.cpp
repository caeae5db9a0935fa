// Real GPT-2 and Qwen2.5 vocabularies (../shared/data/tokenizers) against llama.cpp's published
// token-id vectors, and decode round trips on the same strings.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gpujob/text/normalizer.hpp"
#include "gpujob/text/tokenizer.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

namespace fs = std::filesystem;
using gpujob::text::load_tokenizer;

namespace {
fs::path shared_tokenizers() {
  const char* src = std::getenv("GPUJOB_SOURCE_DIR");
  fs::path root = src ? fs::path(src) : fs::current_path();
  return root / ".." / "shared" / "data" / "tokenizers";
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Vector {
  std::string text;
  std::vector<int32_t> ids;
};

// .inp: strings separated by "\n__ggml_vocab_test__\n"; .out: one line of ids per string.
std::vector<Vector> read_vectors(const fs::path& base) {
  std::string inp = read_file(base.string() + ".inp"), out = read_file(base.string() + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Vector> v;
  std::size_t pos = 0;
  while (true) {
    std::size_t hit = inp.find(sep, pos);
    if (hit == std::string::npos) break;
    v.push_back({inp.substr(pos, hit - pos), {}});
    pos = hit + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  for (auto& item : v) {
    REQUIRE(std::getline(lines, line));
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) item.ids.push_back(id);
  }
  return v;
}

void check_vectors(const std::string& folder, const std::string& vectors, bool nfc) {
  fs::path dir = shared_tokenizers() / folder, base = shared_tokenizers() / "llamacpp-vectors" / vectors;
  if (!fs::exists(dir / "tokenizer.json") || !fs::exists(base.string() + ".inp")) {
    WARN("SKIP: " << dir << " or " << base << " not found (real tokenizer data lives in ../shared)");
    return;
  }
  auto tok = load_tokenizer(dir.string());
  auto cases = read_vectors(base);
  REQUIRE(cases.size() > 30);
  for (const auto& c : cases) {
    INFO("text: '" << c.text << "'");
    CHECK(tok->encode(c.text, false) == c.ids);
    std::string expected = nfc ? gpujob::text::unicode_normalize(c.text, "NFC") : c.text;
    CHECK(tok->decode(c.ids) == expected);
  }
}
}  // namespace

TEST_CASE("GPT-2 tokenizer.json reproduces llama.cpp's gpt-2 vectors", "[text][tokenizer]") {
  check_vectors("gpt2", "ggml-vocab-gpt-2.gguf", false);
}

TEST_CASE("Qwen2.5 tokenizer.json reproduces llama.cpp's qwen2 vectors", "[text][tokenizer]") {
  check_vectors("qwen/qwen2.5-0.5b", "ggml-vocab-qwen2.gguf", true);
}

TEST_CASE("Qwen2.5 special tokens, added tokens and config", "[text][tokenizer]") {
  fs::path dir = shared_tokenizers() / "qwen" / "qwen2.5-0.5b";
  if (!fs::exists(dir / "tokenizer.json")) {
    WARN("SKIP: " << dir << " not found");
    return;
  }
  auto tok = load_tokenizer(dir.string());
  CHECK(tok->vocab_size() == 151665);
  CHECK(tok->eos_id() == 151643);  // <|endoftext|> in this config
  CHECK(tok->pad_id() == 151643);
  CHECK_FALSE(tok->bos_id().has_value());
  CHECK(tok->token_to_id("<|im_start|>") == 151644);
  CHECK(tok->id_to_token(151645) == "<|im_end|>");
  CHECK(tok->is_special(151644));
  CHECK_FALSE(tok->is_special(151657));  // <tool_call> is an added but not special token
  // Special tokens inside text are matched before the model, also glued to words.
  auto ids = tok->encode("<|im_start|>user\nHi<|im_end|>");
  REQUIRE(ids.size() >= 4);
  CHECK(ids.front() == 151644);
  CHECK(ids.back() == 151645);
  CHECK(tok->decode(ids) == "<|im_start|>user\nHi<|im_end|>");
  CHECK(tok->decode(ids, true) == "user\nHi");
  CHECK(tok->decode({151657, 151658}, true) == "<tool_call></tool_call>");
  CHECK(tok->chat_template().find("<|im_start|>") != std::string::npos);
}

TEST_CASE("GPT-2: <|endoftext|> in text and ids outside the vocabulary", "[text][tokenizer]") {
  fs::path dir = shared_tokenizers() / "gpt2";
  if (!fs::exists(dir / "tokenizer.json")) {
    WARN("SKIP: " << dir << " not found");
    return;
  }
  auto tok = load_tokenizer(dir.string());
  CHECK(tok->vocab_size() == 50257);
  auto ids = tok->encode("Hello<|endoftext|> world");
  CHECK(ids == std::vector<int32_t>{15496, 50256, 995});
  CHECK(tok->decode(ids) == "Hello<|endoftext|> world");
  CHECK(tok->decode(ids, true) == "Hello world");
  CHECK(tok->decode({15496, 99999999}) == "Hello");
}
