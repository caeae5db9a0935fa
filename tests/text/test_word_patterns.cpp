// The hand-written GPT-2 / Llama 3 / Qwen 2 word matchers against PCRE2 running the same regexes,
// on the fixture corpus and on many random strings of tricky characters.
#include <map>
#include <memory>
#include <random>

#include "fixtures.hpp"
#include "gpujob/text/regex.hpp"
#include "gpujob/text/word_patterns.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::text;

namespace {
const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Characters that exercise every branch; U+0085 is left out on purpose: PCRE2's \s does not
// include it while HF's regex engine (and the matchers) do.
const std::vector<std::string> kPalette = {
    " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\v", "\f", "a", "b", "Z", "s", "S", "t", "T", "r", "e", "E",
    "v", "m", "l", "L", "d", "D", "'", "'", "0", "7", "42", "1234", ".", ",", "!", "?", "(", ")", "-", "_", "#",
    "\xC3\xA9", "e\xCC\x81", "\xE4\xB8\xAD", "\xE6\x96\x87", "\xD9\x85", "\xE0\xA4\xA8\xE0\xA4\xBF", "\xD9\xA3",
    "\xC2\xBD", "\xE2\x85\xA7", "\xF0\x9F\x98\x80", "\xE2\x80\x8D", "\xEF\xB8\x8F", "\xC2\xA0", "\xE2\x80\x89",
    "\xE3\x80\x80", "\xE2\x80\xA8", "\xC5\xBF", "\xE2\x84\xAA"};

void compare(const std::string& text) {
  static const std::pair<WordPattern, std::string> kPatterns[] = {
      {WordPattern::kGpt2, gpt2_word_regex()}, {WordPattern::kLlama3, kLlama3}, {WordPattern::kQwen2, kQwen2}};
  for (const auto& [kind, regex_text] : kPatterns) {
    static std::map<std::string, std::unique_ptr<Regex>> compiled;
    auto& regex = compiled[regex_text];
    if (!regex) regex = std::make_unique<Regex>(regex_text);
    std::vector<std::pair<std::size_t, std::size_t>> fast;
    find_words(kind, text, fast);
    INFO("pattern " << static_cast<int>(kind) << " text '" << text << "'");
    REQUIRE(fast == regex->find_all(text));
  }
}
}  // namespace

TEST_CASE("Known patterns are recognized by their exact text", "[text][pretokenizer]") {
  CHECK(recognize_word_pattern(gpt2_word_regex()) == WordPattern::kGpt2);
  CHECK(recognize_word_pattern(kLlama3) == WordPattern::kLlama3);
  CHECK(recognize_word_pattern(kQwen2) == WordPattern::kQwen2);
  CHECK_FALSE(recognize_word_pattern("\\p{L}+").has_value());
}

TEST_CASE("Word matchers equal PCRE2 on random tricky strings", "[text][pretokenizer]") {
  std::mt19937 rng(12345);
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    int len = 1 + static_cast<int>(rng() % 24);
    for (int i = 0; i < len; ++i) text += kPalette[rng() % kPalette.size()];
    compare(text);
  }
}

TEST_CASE("Word matchers equal PCRE2 on the fixture corpus", "[text][pretokenizer]") {
  auto path = testing::fixture_dir() / "corpus.jsonl";
  if (!std::filesystem::exists(path)) {
    WARN("SKIP: " << path << " not found");
    return;
  }
  for (const auto& row : testing::read_jsonl(path)) {
    std::string text = row.at("text").get<std::string>();
    if (text.find("\xC2\x85") != std::string::npos) continue;
    compare(text);
  }
}
