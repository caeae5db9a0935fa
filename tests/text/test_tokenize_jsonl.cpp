// The JSONL core of `gpujob tokenize`: {"text"} lines to {"ids"} lines and back, and its errors.
#include <sstream>

#include "fixtures.hpp"
#include "gpujob/text/tokenize_jsonl.hpp"
#include "gpujob/util/error.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::text;
namespace fs = std::filesystem;

TEST_CASE("encode_jsonl and decode_jsonl round trip", "[text][tokenize]") {
  fs::path dir = testing::shared_tokenizers() / "qwen" / "qwen2.5-0.5b";
  if (!fs::exists(dir / "tokenizer.json")) {
    WARN("SKIP: " << dir << " not found");
    return;
  }
  auto tok = load_tokenizer(dir.string());
  const std::vector<std::string> texts = {"Hello world", "ünïcödé 😀\n\ttabs", "<|im_start|>x<|im_end|>", ""};
  std::stringstream in;
  for (const auto& t : texts) in << nlohmann::json({{"text", t}}).dump() << "\n\n";
  std::stringstream encoded;
  TokenizeOptions options;
  CHECK(encode_jsonl(*tok, in, encoded, "in.jsonl", options) == texts.size());
  std::string copy = encoded.str();
  std::stringstream lines(copy);
  std::string line;
  for (const auto& t : texts) {
    REQUIRE(std::getline(lines, line));
    CHECK(nlohmann::json::parse(line).at("ids").get<std::vector<int32_t>>() == tok->encode(t));
  }
  std::stringstream decoded;
  CHECK(decode_jsonl(*tok, encoded, decoded, "ids.jsonl", options) == texts.size());
  for (const auto& t : texts) {
    REQUIRE(std::getline(decoded, line));
    CHECK(nlohmann::json::parse(line).at("text").get<std::string>() == t);
  }
}

TEST_CASE("tokenize JSONL errors name the file and line", "[text][tokenize]") {
  fs::path dir = testing::shared_tokenizers() / "gpt2";
  if (!fs::exists(dir / "tokenizer.json")) {
    WARN("SKIP: " << dir << " not found");
    return;
  }
  auto tok = load_tokenizer(dir.string());
  std::stringstream in("{\"text\": \"ok\"}\n{\"txt\": 1}\n"), out;
  try {
    encode_jsonl(*tok, in, out, "data.jsonl", {});
    FAIL("no error");
  } catch (const gpujob::Error& e) {
    CHECK(std::string(e.what()).find("data.jsonl:2: expected {\"text\": string}") != std::string::npos);
  }
  std::stringstream bad("{\"ids\": [1, \"x\"]}\n"), out2;
  CHECK_THROWS_WITH(decode_jsonl(*tok, bad, out2, "ids.jsonl", {}), Catch::Contains("ids.jsonl:1: ids must be integers"));
  CHECK_THROWS_WITH(load_tokenizer("/nonexistent/model"), Catch::Contains("/nonexistent/model"));
}
