
#include "gpujob/io/generation_cache.hpp"
#include "gpujob/io/jsonl.hpp"
#include "gpujob/util/error.hpp"
#include "temp_dir.hpp"

#include <filesystem>
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::io;

namespace {

GenerationCacheKey make_key() {
  GenerationCacheKey key;
  key.model_name = "org/tiny-model";
  key.model = {{"files", {{"config.json", "0123"}}}, {"weights", {{"model.safetensors", 1024}}}};
  key.template_name = "50-50";
  key.template_text = "name: 50-50\nuser: '{question}'\n";
  key.data = {{"data_file", "mc_demo.jsonl"}, {"seed", 42}, {"limit", 4}};
  key.generation = {{"max_new_tokens", 100}, {"temperature", 1.0}, {"seed", 0}};
  return key;
}

CachedSample sample(const std::string& id, const std::string& completion) {
  CachedSample s;
  s.id = id;
  s.prompt = "<user>Q " + id;
  s.completion = completion;
  s.prompt_ids = {1, 2, 3};
  s.completion_ids = {4, 5};
  s.finish_reason = "stop";
  s.predicted = "B";
  s.correct_answer = "B";
  s.label = 1;
  s.subject = "s";
  return s;
}

}  // namespace

TEST_CASE("cache layout: <dir>/<model>/<template>/<hash>/{key.json, completions.jsonl}") {
  TempDir dir;
  const auto key = make_key();
  GenerationCache cache(dir.path.string(), key);
  CHECK(cache.directory() == (dir.path / "org--tiny-model" / "50-50" / key.hash()).string());
  REQUIRE(std::filesystem::exists(cache.key_path()));
  CHECK(nlohmann::json::parse(read_text_file(cache.key_path())) == key.to_json());
  CHECK(key.hash().size() == 16);
}

TEST_CASE("append per chunk, load what exists, rerun finds only the missing ids") {
  TempDir dir;
  const auto key = make_key();
  {
    GenerationCache cache(dir.path.string(), key);
    CHECK(cache.load().empty());
    cache.append({sample("a", "\\box{B}"), sample("b", "x")});
  }
  // A crash while the second chunk was being written leaves a torn line.
  GenerationCache cache(dir.path.string(), key);
  { std::ofstream(cache.completions_path(), std::ios::app) << "{\"id\": \"c\", \"prom"; }
  auto stored = cache.load();
  REQUIRE(stored.size() == 2);
  CHECK(stored[0].to_json() == sample("a", "\\box{B}").to_json());
  CHECK(missing_ids({"a", "b", "c", "d"}, stored) == std::vector<std::string>{"c", "d"});
  cache.append({sample("c", "y"), sample("d", "z")});
  // The same id stored twice (a redone chunk) keeps the last line.
  cache.append({sample("b", "again")});
  stored = GenerationCache(dir.path.string(), key).load();
  REQUIRE(stored.size() == 4);
  CHECK(stored[1].completion == "again");
  CHECK(missing_ids({"a", "b", "c", "d"}, stored).empty());
}

TEST_CASE("every part of the key changes the entry") {
  const auto base = make_key();
  auto changed = base;
  changed.generation["temperature"] = 0.7;
  CHECK(changed.hash() != base.hash());
  changed = base;
  changed.model["weights"]["model.safetensors"] = 1025;
  CHECK(changed.hash() != base.hash());
  changed = base;
  changed.template_text += " ";
  CHECK(changed.hash() != base.hash());
  changed = base;
  changed.data["seed"] = 43;
  CHECK(changed.hash() != base.hash());
}

TEST_CASE("a different key stored under the same hash is an error, never a mix") {
  TempDir dir;
  const auto key = make_key();
  GenerationCache cache(dir.path.string(), key);
  auto stored = key.to_json();
  stored["generation"]["temperature"] = 0.5;  // as if the folder held another run's completions
  write_file_atomically(cache.key_path(), stored.dump(2));
  REQUIRE_THROWS_WITH(GenerationCache(dir.path.string(), key),
                      Catch::Contains("key.json: the stored key differs from this run's in \"generation\"") &&
                          Catch::Contains("delete " + cache.directory()));
}

TEST_CASE("bad cache lines are one-line errors naming file and line") {
  TempDir dir;
  GenerationCache cache(dir.path.string(), make_key());
  cache.append({sample("a", "x")});
  { std::ofstream(cache.completions_path(), std::ios::app) << "{\"id\": \"b\"}\n"; }
  REQUIRE_THROWS_WITH(cache.load(), cache.completions_path() + ":2: key \"prompt\": missing");
}

TEST_CASE("model fingerprint: small files by content, weights by size") {
  TempDir dir;
  REQUIRE_THROWS_WITH(model_fingerprint(dir.path.string()), Catch::Contains("no config.json"));
  dir.write("config.json", "{\"hidden_size\": 8}");
  REQUIRE_THROWS_WITH(model_fingerprint(dir.path.string()), Catch::Contains("no weight files"));
  dir.write("model.safetensors", std::string(100, 'x'));
  dir.write("tokenizer.json", "{}");
  dir.write("README.md", "ignored");
  const auto fp = model_fingerprint(dir.path.string());
  CHECK(fp["weights"]["model.safetensors"] == 100);
  CHECK(fp["files"].contains("config.json"));
  CHECK(fp["files"].contains("tokenizer.json"));
  CHECK_FALSE(fp["files"].contains("README.md"));
  dir.write("config.json", "{\"hidden_size\": 16}");
  CHECK(model_fingerprint(dir.path.string()) != fp);
}
