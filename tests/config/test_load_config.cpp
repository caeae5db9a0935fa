// Run config parsing: defaults, overrides, reference.yaml coverage and every class of error.
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <set>
#include <string>

#include "gpujob/config/load_config.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob;
using namespace gpujob::config;

namespace {

std::string source_dir() {
  const char* dir = std::getenv("GPUJOB_SOURCE_DIR");
  return dir ? dir : ".";
}

std::string error_of(const std::string& yaml, const std::vector<ConfigOverride>& overrides = {}) {
  try {
    parse_run_config(yaml, "test.yaml", overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void flatten(const YAML::Node& node, const std::string& path, std::set<std::string>& out) {
  if (node.IsMap()) {
    for (const auto& entry : node) {
      flatten(entry.second, path.empty() ? entry.first.Scalar() : path + "." + entry.first.Scalar(), out);
    }
  } else {
    out.insert(path);
  }
}

}  // namespace

TEST_CASE("a minimal extract config gets its defaults") {
  const auto c = parse_run_config(
      "job: extract\nmodel: {path: m, dtype: float32, device: cpu}\ndata: {path: d.jsonl}\n"
      "extract: {layers: [0, 2], positions: [all, last, mean], output: out.h5}\n",
      "dir/my-run.yaml");
  CHECK(c.job == JobKind::extract);
  CHECK(c.run_name == "my-run");
  CHECK(c.run_dir() == "results/my-run");
  CHECK(c.model.dtype == DType::float32);
  CHECK(c.model.device == DevicePreference::cpu);
  CHECK(c.extract.layers == std::vector<int>{0, 2});
  REQUIRE(c.extract.positions.size() == 3);
  CHECK(c.extract.positions[0] == TokenPosition::all);
  CHECK(c.extract.positions[2] == TokenPosition::mean);
  CHECK(c.data.seed == 42);
  CHECK(c.generation.top_p == 1.0);
  CHECK(c.coordinator.chunk_size == 16);
  CHECK_FALSE(c.layout.any_role());
  CHECK(c.spec.recap_after_negative_num == 15);
}

TEST_CASE("--set overrides values and creates sections") {
  const auto c = parse_run_config("job: selftest\nselftest: {num_chunks: 3}\n", "t.yaml",
                                  {parse_override("selftest.num_chunks=7"),
                                   parse_override("layout.roles.generator.gpus=[0, 1]"),
                                   parse_override("run_name=other")});
  CHECK(c.selftest.num_chunks == 7);
  CHECK(c.run_name == "other");
  CHECK(c.layout.role(Role::generator).enabled);
  CHECK(c.layout.role(Role::generator).gpus == std::vector<int>{0, 1});
  CHECK(error_of("job: selftest\n", {parse_override("selftest.num_chunk=2")}) ==
        "--set selftest.num_chunk: unknown key 'num_chunk' (did you mean 'num_chunks'?)");
  CHECK(error_of("job: selftest\n", {parse_override("selftest.num_chunks=abc")}) ==
        "--set selftest.num_chunks: found \"abc\", expected an integer");
  CHECK_THROWS_WITH(parse_override("novalue"), "--set novalue: expected key.path=value");
}

TEST_CASE("unknown keys are errors with a suggestion and their line") {
  CHECK(error_of("job: selftest\nlayout:\n  roles:\n    extractr:\n      gpus: [0]\n") ==
        "test.yaml:4: layout.roles.extractr: unknown key 'extractr' (did you mean 'extractor'?)");
  CHECK(error_of("job: selftest\nmodle: {path: x}\n") ==
        "test.yaml:2: modle: unknown key 'modle' (did you mean 'model'?)");
  const std::string far = error_of("job: selftest\ncoordinator:\n  zzzzzz: 1\n");
  CHECK(far.rfind("test.yaml:3: coordinator.zzzzzz: unknown key 'zzzzzz', expected one of: chunk_size, "
                  "progress_interval_s", 0) == 0);
}

TEST_CASE("wrong types name the expected type") {
  CHECK(error_of("job: selftest\nselftest:\n  num_chunks: many\n") ==
        "test.yaml:3: selftest.num_chunks: found \"many\", expected an integer");
  CHECK(error_of("job: selftest\nextract:\n  layers: [0,\n    x]\n") ==
        "test.yaml:4: extract.layers[1]: found \"x\", expected an integer");
  CHECK(error_of("job: selftest\nextract: {layers: 3}\n") ==
        "test.yaml:2: extract.layers: found \"3\", expected a list");
  CHECK(error_of("job: selftest\nmodel: {path: m, dtype: bfloat}\n") ==
        "test.yaml:2: model.dtype: found \"bfloat\", expected one of float32, bfloat16, float16 "
        "(did you mean 'bfloat16'?)");
  CHECK(error_of("job: selftest\nmodel: just-a-path\n") ==
        "test.yaml:2: model: found \"just-a-path\", expected a map of settings");
  CHECK(error_of("job: selftest\ngeneration: {ignore_eos: maybe}\n") ==
        "test.yaml:2: generation.ignore_eos: found \"maybe\", expected true or false");
  CHECK(error_of("job: selftest\ngeneration: {temperature: hot}\n") ==
        "test.yaml:2: generation.temperature: found \"hot\", expected a number");
  CHECK(error_of("job: selftets\n") ==
        "test.yaml:1: job: found \"selftets\", expected one of extract, generate, cache_activations, sweep, "
        "spec_thinking, selftest (did you mean 'selftest'?)");
}

TEST_CASE("missing required keys are named per job") {
  CHECK(error_of("run_name: x\n") ==
        "test.yaml: job: missing; expected one of extract, generate, cache_activations, sweep, spec_thinking, "
        "selftest");
  CHECK(error_of("job: extract\nmodel: {path: m}\ndata: {path: d}\nextract:\n  output: o.h5\n") ==
        "test.yaml:4: extract.layers: missing; job extract needs layers such as [0, 12]");
  CHECK(error_of("job: generate\nmodel: {path: m}\ndata: {path: d}\n") ==
        "test.yaml: generation.output: missing; job generate needs a JSONL file to write");
  CHECK(error_of("job: generate\nmodel:\n  dtype: float32\n") ==
        "test.yaml:2: model.path: missing; job generate needs a model directory (config.json, *.safetensors)");
  CHECK(error_of("job: spec_thinking\nmodel: {path: a}\ndraft_model: {path: b}\nspec: {problems: p.jsonl}\n"
                 "layout:\n  roles:\n    target_shard: {gpus: [0, 1]}\n") ==
        "test.yaml:6: layout.roles.draft: missing; job spec_thinking needs target_shard and draft roles");
}

TEST_CASE("value ranges and layout structure are checked") {
  CHECK(error_of("job: selftest\ngeneration:\n  top_p: 1.5\n") ==
        "test.yaml:3: generation.top_p: found 1.5, expected a value in (0, 1]");
  CHECK(error_of("job: selftest\nlayout:\n  roles:\n    generator:\n      gpus: [0, 1, 1]\n") ==
        "test.yaml:5: layout.roles.generator.gpus[2]: GPU 1 is listed twice");
  CHECK(error_of("job: selftest\nlayout:\n  roles:\n    generator:\n      gpus: [0, -1]\n") ==
        "test.yaml:5: layout.roles.generator.gpus[1]: found -1, expected a GPU id >= 0");
  CHECK(error_of("job: selftest\nlayout:\n  roles:\n    target_shard:\n      gpus: [0, 1, 2]\n"
                 "      tensor_parallel: 2\n") ==
        "test.yaml:6: layout.roles.target_shard.tensor_parallel: found 2, expected a divisor of the role's 3 "
        "ranks (3 GPUs x 1 per GPU)");
  CHECK(error_of("job: selftest\nextract: {dtype: bfloat16}\n") ==
        "test.yaml:2: extract.dtype: found \"bfloat16\", expected float32 or float16 (HDF5 has no bfloat16)");
  CHECK(error_of("job: selftest\nlayout: {roles: {generator: {gpus: [0]}}}\nfoo: [\n") .rfind("test.yaml:", 0) == 0);
}

TEST_CASE("configs/reference.yaml loads and lists every key the parser knows") {
  const std::string path = source_dir() + "/configs/reference.yaml";
  const RunConfig c = load_run_config(path);
  const RunConfig defaults = parse_run_config("job: selftest\n", "reference.yaml");
  // The reference shows the defaults.
  CHECK(c.model.dtype == defaults.model.dtype);
  CHECK(c.generation.batch_size == defaults.generation.batch_size);
  CHECK(c.spec.negative_words == defaults.spec.negative_words);
  CHECK(c.spec.trigger_tokens == std::vector<std::string>{"\n\n"});
  CHECK(c.spec.help_recap_words == defaults.spec.help_recap_words);
  CHECK(c.selftest.num_chunks == defaults.selftest.num_chunks);
  CHECK(c.coordinator.progress_interval_s == defaults.coordinator.progress_interval_s);
  CHECK(c.layout.role(Role::draft).effective_memory_fraction() == Approx(0.9));

  std::set<std::string> listed;
  flatten(YAML::LoadFile(path), "", listed);
  const auto known = known_config_keys();
  CHECK(known.size() > 90);
  for (const auto& key : known) {
    INFO("key " << key);
    CHECK(listed.count(key) == 1);
  }
  CHECK(listed.size() == known.size());
}
