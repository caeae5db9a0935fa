// BPE model rules on small hand-made vocabularies: merge priority, both merge formats,
// ignore_merges, byte fallback, unknown-token fusing, and merges that cross a "▁" (which must turn
// off the word-by-word shortcut for SentencePiece-style models).
#include "gpujob/text/bpe_model.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using gpujob::text::BpeModel;
using nlohmann::json;

namespace {
std::vector<int32_t> encode(const BpeModel& m, const std::string& word) {
  std::vector<int32_t> out;
  m.encode_word(word, out);
  return out;
}

json model(json vocab, json merges) {
  return {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}};
}
}  // namespace

TEST_CASE("Lower-ranked merges apply first, in either merge format", "[text][bpe]") {
  json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}};
  BpeModel strings(model(vocab, {"b c", "a b"}), "t.json");
  BpeModel pairs(model(vocab, json::array({json::array({"b", "c"}), json::array({"a", "b"})})), "t.json");
  CHECK(encode(strings, "abc") == std::vector<int32_t>{0, 4});
  CHECK(encode(pairs, "abc") == std::vector<int32_t>{0, 4});
  BpeModel other_order(model(vocab, {"a b", "b c"}), "t.json");
  CHECK(encode(other_order, "abc") == std::vector<int32_t>{3, 2});
  // A second call comes from the word cache and must agree.
  CHECK(encode(other_order, "abc") == std::vector<int32_t>{3, 2});
}

TEST_CASE("ignore_merges takes a whole-word token even without a merge path", "[text][bpe]") {
  json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"abc", 4}};
  json spec = model(vocab, {"a b"});
  BpeModel plain(spec, "t.json");
  CHECK(encode(plain, "abc") == std::vector<int32_t>{3, 2});
  spec["ignore_merges"] = true;
  BpeModel ignoring(spec, "t.json");
  CHECK(encode(ignoring, "abc") == std::vector<int32_t>{4});
  CHECK(encode(ignoring, "cab") == std::vector<int32_t>{2, 3});
}

TEST_CASE("Byte fallback and unknown tokens", "[text][bpe]") {
  json vocab = {{"<unk>", 0}, {"a", 1}, {"<0xC3>", 2}, {"<0xA9>", 3}};
  json spec = model(vocab, json::array());
  spec["unk_token"] = "<unk>";
  spec["byte_fallback"] = true;
  BpeModel fallback(spec, "t.json");
  CHECK(encode(fallback, "a\xC3\xA9") == std::vector<int32_t>{1, 2, 3});  // é as its two bytes
  CHECK(encode(fallback, "\xC3\xB6") == std::vector<int32_t>{0});         // ö: byte 0xB6 is missing
  spec["byte_fallback"] = false;
  spec["fuse_unk"] = true;
  BpeModel fused(spec, "t.json");
  CHECK(encode(fused, "\xC3\xA9\xC3\xB6" "a") == std::vector<int32_t>{0, 1});
  spec["fuse_unk"] = false;
  BpeModel unfused(spec, "t.json");
  CHECK(encode(unfused, "\xC3\xA9\xC3\xB6" "a") == std::vector<int32_t>{0, 0, 1});
}

TEST_CASE("Merges across a metaspace are honoured", "[text][bpe]") {
  const std::string meta = "\xE2\x96\x81";
  // With "a▁" in the vocabulary a merge can cross the start of "▁b": the word is not cut there.
  json crossing = {{"a", 0}, {"b", 1}, {meta, 2}, {"a" + meta, 3}, {"a" + meta + "b", 4}, {meta + "b", 5}};
  BpeModel joined(model(crossing, {"a " + meta, "a" + meta + " b", meta + " b"}), "t.json");
  CHECK(encode(joined, "a" + meta + "b") == std::vector<int32_t>{4});
  // Without such tokens the word-by-word path gives what whole-word BPE gives.
  json separate = {{"a", 0}, {"b", 1}, {meta, 2}, {meta + "b", 3}, {meta + meta, 4}};
  BpeModel split(model(separate, {meta + " b", meta + " " + meta}), "t.json");
  CHECK(encode(split, "a" + meta + "b" + meta + meta + meta + "b") == std::vector<int32_t>{0, 3, 4, 3});
}

TEST_CASE("Malformed models fail with the file named", "[text][bpe]") {
  CHECK_THROWS_WITH(BpeModel(json{{"type", "Unigram"}}, "m.json"), Catch::Contains("m.json") && Catch::Contains("Unigram"));
  CHECK_THROWS_WITH(BpeModel(model({{"a", 0}}, {"ab"}), "m.json"), Catch::Contains("m.json: merge 'ab'"));
}
