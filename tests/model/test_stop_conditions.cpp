// Stop conditions: EOS, stop strings, max_new_tokens, finish reasons, and incremental decoding that
// matches a full decode.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <unistd.h>
#include <string>
#include <vector>

#include "gpujob/model/stop_conditions.hpp"
#include "gpujob/util/error.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::model;
namespace fs = std::filesystem;

namespace {

// Token pieces of a byte-level vocabulary: 2 is a special token (EOS), 10/11 are the two bytes of
// "é", 12..14 the three bytes of "€".
const std::map<int64_t, std::string> kPieces = {
    {2, "<eos>"}, {3, "Hello"}, {4, " world"}, {5, "!"}, {6, "\n"}, {7, "Question"}, {8, ":"},
    {9, " "},     {10, "\xC3"}, {11, "\xA9"},  {12, "\xE2"}, {13, "\x82"}, {14, "\xAC"}, {15, "ab"},
    {16, "c"},    {17, "STOP"}};

// Replaces each byte that does not start a complete UTF-8 character by U+FFFD, as HF's
// decode(errors="replace") does.
std::string replace_invalid_utf8(const std::string& bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size();) {
    unsigned char c = static_cast<unsigned char>(bytes[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= bytes.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(bytes[i + k]) >> 6) == 2;
    if (ok) {
      out.append(bytes, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i += 1;
    }
  }
  return out;
}

std::string byte_level_decode(const std::vector<int64_t>& ids) {
  std::string bytes;
  for (int64_t id : ids)
    if (id != 2) bytes += kPieces.at(id);
  return replace_invalid_utf8(bytes);
}

// SentencePiece-like: a piece's leading space belongs to it, and a decode drops the leading space of
// its first piece.
std::string sentencepiece_decode(const std::vector<int64_t>& ids) {
  std::string text = byte_level_decode(ids);
  if (!text.empty() && text[0] == ' ') text.erase(0, 1);
  return text;
}

StopConditions conditions(std::vector<std::string> stops, int64_t max_new = 100,
                          std::vector<int64_t> eos = {2}, bool ignore_eos = false) {
  StopConditions c;
  c.eos_token_ids = std::move(eos);
  c.stop_strings = std::move(stops);
  c.max_new_tokens = max_new;
  c.ignore_eos = ignore_eos;
  return c;
}

// Feeds tokens until the checker finishes; returns how many were taken.
size_t feed(StopChecker& checker, const std::vector<int64_t>& tokens) {
  size_t n = 0;
  for (int64_t t : tokens) {
    ++n;
    if (checker.append(t) != FinishReason::kNone) break;
  }
  return n;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

}  // namespace

TEST_CASE("finish reason names", "[stop]") {
  CHECK(std::string(finish_reason_name(FinishReason::kStop)) == "stop");
  CHECK(std::string(finish_reason_name(FinishReason::kLength)) == "length");
  CHECK(std::string(finish_reason_name(FinishReason::kNone)).empty());
}

TEST_CASE("EOS ends a completion with reason stop and stays in its ids", "[stop]") {
  StopChecker checker(conditions({}), byte_level_decode);
  CHECK(feed(checker, {3, 4, 5, 2, 3, 3}) == 4);
  CHECK(checker.finish_reason() == FinishReason::kStop);
  CHECK(checker.ids() == std::vector<int64_t>{3, 4, 5, 2});
  CHECK(checker.text() == "Hello world!");
  CHECK_THROWS_AS(checker.append(3), gpujob::Error);
}

TEST_CASE("max_new_tokens ends with reason length; EOS on the last token is still stop", "[stop]") {
  StopChecker a(conditions({}, 3), byte_level_decode);
  CHECK(feed(a, {3, 4, 5, 6, 7}) == 3);
  CHECK(a.finish_reason() == FinishReason::kLength);
  CHECK(a.text() == "Hello world!");

  StopChecker b(conditions({}, 3), byte_level_decode);
  CHECK(feed(b, {3, 4, 2}) == 3);
  CHECK(b.finish_reason() == FinishReason::kStop);

  StopChecker c(conditions({"!"}, 3), byte_level_decode);
  CHECK(feed(c, {3, 4, 5}) == 3);
  CHECK(c.finish_reason() == FinishReason::kStop);
  CHECK(c.text() == "Hello world");
}

TEST_CASE("ignore_eos generates through EOS ids up to max_new_tokens", "[stop]") {
  StopChecker checker(conditions({}, 5, {2}, /*ignore_eos=*/true), byte_level_decode);
  CHECK(feed(checker, {3, 2, 4, 2, 5, 6}) == 5);
  CHECK(checker.finish_reason() == FinishReason::kLength);
  CHECK(checker.ids() == std::vector<int64_t>{3, 2, 4, 2, 5});
  CHECK(checker.text() == "Hello world!");
}

TEST_CASE("several EOS ids each stop", "[stop]") {
  for (int64_t eos : {2, 17}) {
    StopChecker checker(conditions({}, 10, {2, 17}), byte_level_decode);
    CHECK(feed(checker, {3, eos, 4}) == 2);
    CHECK(checker.finish_reason() == FinishReason::kStop);
  }
}

TEST_CASE("a stop string spanning tokens: text cut before it, ids through the completing token", "[stop]") {
  // "Hello world!\nQuestion:" with stop "\nQuest" completed by token 7 ("Question").
  StopChecker checker(conditions({"\nQuest"}), byte_level_decode);
  CHECK(feed(checker, {3, 4, 5, 6, 7, 8, 9}) == 5);
  CHECK(checker.finish_reason() == FinishReason::kStop);
  CHECK(checker.ids() == std::vector<int64_t>{3, 4, 5, 6, 7});
  CHECK(checker.text() == "Hello world!");
}

TEST_CASE("the earliest stop string wins, and a stop at the very start leaves empty text", "[stop]") {
  StopChecker a(conditions({"world", "o w", "zzz"}), byte_level_decode);
  CHECK(feed(a, {3, 4, 5}) == 2);
  CHECK(a.text() == "Hell");

  StopChecker b(conditions({"Hel"}), byte_level_decode);
  CHECK(feed(b, {3, 4}) == 1);
  CHECK(b.finish_reason() == FinishReason::kStop);
  CHECK(b.text().empty());

  // "abc" completed by "c" after "ab": the match starts in text decoded one step earlier.
  StopChecker c(conditions({"bc"}), byte_level_decode);
  CHECK(feed(c, {3, 15, 16, 3}) == 3);
  CHECK(c.text() == "Helloa");
}

TEST_CASE("multi-byte characters split over tokens are matched once complete", "[stop]") {
  // "é" is tokens 10, 11; "€" is 12, 13, 14.
  StopChecker a(conditions({"\xC3\xA9"}), byte_level_decode);
  CHECK(feed(a, {3, 10, 11, 4}) == 3);
  CHECK(a.ids() == std::vector<int64_t>{3, 10, 11});
  CHECK(a.text() == "Hello");

  StopChecker b(conditions({"zz"}, 6), byte_level_decode);
  CHECK(feed(b, {3, 12, 13, 14, 10, 11}) == 6);
  CHECK(b.finish_reason() == FinishReason::kLength);
  CHECK(b.text() == "Hello\xE2\x82\xAC\xC3\xA9");
  // A completion cut inside a character ends with U+FFFD, as a full decode does.
  StopChecker c(conditions({"zz"}, 3), byte_level_decode);
  feed(c, {3, 12, 13});
  CHECK(c.text() == byte_level_decode({3, 12, 13}));
}

TEST_CASE("incremental text equals a full decode", "[stop]") {
  std::mt19937 rng(7);
  std::vector<int64_t> vocab = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 2};
  for (bool sentencepiece : {false, true}) {
    DecodeFn decode = sentencepiece ? DecodeFn(sentencepiece_decode) : DecodeFn(byte_level_decode);
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<int64_t> tokens(1 + rng() % 30);
      for (int64_t& t : tokens) t = vocab[rng() % vocab.size()];
      // A stop string that cannot occur keeps the incremental path on without ending anything.
      StopChecker checker(conditions({"\x01"}, static_cast<int64_t>(tokens.size()), {}), decode);
      CHECK(feed(checker, tokens) == tokens.size());
      INFO("sentencepiece " << sentencepiece << " trial " << trial);
      CHECK(checker.text() == decode(tokens));
    }
  }
  // Leading space: a SentencePiece decode of " world" alone is "world".
  StopChecker sp(conditions({"\x01"}, 2), sentencepiece_decode);
  feed(sp, {4, 4});
  CHECK(sp.text() == "world world");
}

TEST_CASE("invalid settings are one-line errors naming the key", "[stop]") {
  CHECK_THROWS_WITH(StopChecker(conditions({}, 0), byte_level_decode),
                    Catch::Contains("generation.max_new_tokens"));
  CHECK_THROWS_WITH(StopChecker(conditions({""}), byte_level_decode), Catch::Contains("generation.stop"));
  CHECK_THROWS_WITH(StopChecker(conditions({"x"}), nullptr), Catch::Contains("tokenizer"));
  // Without stop strings no decoder is needed; the text is empty.
  StopChecker no_text(conditions({}, 2), nullptr);
  feed(no_text, {3, 4});
  CHECK(no_text.finish_reason() == FinishReason::kLength);
  CHECK(no_text.text().empty());
}

TEST_CASE("EOS ids from config.json and generation_config.json", "[stop]") {
  fs::path dir = fs::temp_directory_path() / ("gpujob_test_eos_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_file(dir / "config.json", R"({"eos_token_id": 5, "vocab_size": 10})");
  CHECK(read_eos_token_ids(dir.string()) == std::vector<int64_t>{5});
  write_file(dir / "generation_config.json", R"({"eos_token_id": [7, 5, 9]})");
  CHECK(read_eos_token_ids(dir.string()) == std::vector<int64_t>{5, 7, 9});
  // Multimodal configs keep it under text_config.
  write_file(dir / "config.json", R"({"text_config": {"eos_token_id": [1, 106]}})");
  CHECK(read_eos_token_ids(dir.string()) == std::vector<int64_t>{1, 106, 7, 5, 9});
  write_file(dir / "generation_config.json", R"({"eos_token_id": "two"})");
  CHECK_THROWS_WITH(read_eos_token_ids(dir.string()),
                    Catch::Contains("generation_config.json") && Catch::Contains("eos_token_id"));
  fs::remove_all(dir);
  CHECK(read_eos_token_ids(dir.string()).empty());

  // The golden checkpoints say which ids HF stops on.
  const char* source = std::getenv("GPUJOB_SOURCE_DIR");
  if (source && fs::exists(fs::path(source) / "tests/data/models/qwen3_new/config.json")) {
    CHECK(read_eos_token_ids((fs::path(source) / "tests/data/models/qwen3_new").string()) ==
          std::vector<int64_t>{2});
  }
}
