// `gpujob plan --gpu-memory-gib`: what each rank's memory fraction holds, from config.json alone.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gpujob/model/kv_cache_plan.hpp"
#include "gpujob/model/model_config.hpp"
#include "jobs/plan_command.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

namespace fs = std::filesystem;
using namespace gpujob;

namespace {

std::string source_dir() {
  const char* s = std::getenv("GPUJOB_SOURCE_DIR");
  return s ? s : ".";
}

// A config with 2 generators (fraction 0.5) and 2 extractors (0.9) on 4 GPUs for `model_dir`.
std::string write_config(const std::string& model_dir) {
  const fs::path dir = fs::temp_directory_path() / "gpujob-memory-plan";
  fs::create_directories(dir);
  const fs::path path = dir / "plan.yaml";
  std::ofstream(path) << "job: cache_activations\n"
                      << "model: {path: " << model_dir << ", dtype: bfloat16, device: cuda}\n"
                      << "data: {path: " << source_dir() << "/configs/data/mc_demo.jsonl}\n"
                      << "generation: {max_new_tokens: 100, max_model_len: 2000, batch_size: 32}\n"
                      << "extract: {layers: [1], positions: [last], batch_size: 16}\n"
                      << "layout:\n  roles:\n"
                      << "    generator: {gpus: [0, 1], memory_fraction: 0.5}\n"
                      << "    extractor: {gpus: [2, 3], memory_fraction: 0.9}\n";
  return path.string();
}

}  // namespace

TEST_CASE("the memory plan gives each generator the KV-cache slots its fraction holds") {
  const std::string model_dir = source_dir() + "/tests/data/models/qwen3_new";
  if (!fs::exists(model_dir + "/config.json")) {
    WARN("no " << model_dir << ": skipped");
    return;
  }
  const std::string config = write_config(model_dir);
  const model::ModelConfig m = model::load_model_config(model_dir + "/config.json");
  const int64_t weights = model::decoder_weight_bytes(m, at::kBFloat16);
  const model::KvCacheShape shape{m.num_layers, m.n_kv_heads, m.head_dim};
  const int64_t per_slot = model::KvCache::bytes_per_token(shape, at::kBFloat16) * 2000;

  SECTION("room for exactly 10 of the 32 slots asked: 10, and a warning") {
    const int64_t workspace = model::generation_workspace_bytes(m, at::kBFloat16, 8192, 1900, 10);
    const double fraction_bytes = static_cast<double>(weights + workspace + 10 * per_slot + per_slot / 2);
    const double gpu_gib = fraction_bytes / 0.5 / (1024.0 * 1024.0 * 1024.0);
    const std::string text = jobs::plan_text(config, 4, 1, 0, gpu_gib);
    CHECK_THAT(text, Catch::Contains("rank 0 generator on GPU 0") && Catch::Contains("KV cache 10 slots x 2000 positions"));
    CHECK_THAT(text, Catch::Contains("warning: rank 1 generator on GPU 1: generation.batch_size 32 does not fit; "
                                     "10 slots of 2000 positions do"));
    CHECK_THAT(text, Catch::Contains("rank 2 extractor on GPU 2") && Catch::Contains("left for activations"));
  }
  SECTION("an extractor fraction that holds 5 sequences of 2000 tokens: said, and a warning for 16") {
    const int64_t five = model::extraction_workspace_bytes(m, at::kBFloat16, 5, 2000, 1);
    const int64_t six = model::extraction_workspace_bytes(m, at::kBFloat16, 6, 2000, 1);
    const double fraction_bytes = static_cast<double>(weights + (five + six) / 2);
    const std::string text = jobs::plan_text(config, 4, 1, 0, fraction_bytes / 0.9 / (1024.0 * 1024.0 * 1024.0));
    CHECK_THAT(text, Catch::Contains("rank 2 extractor on GPU 2") &&
                         Catch::Contains("batches of 5 sequences of 2000 tokens fit (extract.batch_size 16)"));
    CHECK_THAT(text, Catch::Contains("warning: rank 3 extractor on GPU 3: extract.batch_size 16 may not fit at 2000 "
                                     "tokens (about 5 do)"));
  }
  SECTION("plenty of memory: every slot asked, no warning") {
    const std::string text = jobs::plan_text(config, 4, 1, 0, 80);
    CHECK_THAT(text, Catch::Contains("KV cache 32 slots x 2000 positions"));
    CHECK_THAT(text, !Catch::Contains("warning:"));
  }
  SECTION("too little for one slot: said so, with what to change") {
    const std::string text = jobs::plan_text(config, 4, 1, 0, 0.001);
    CHECK_THAT(text, Catch::Contains("not even one KV-cache slot fits") && Catch::Contains("memory_fraction"));
  }
  SECTION("without --gpu-memory-gib there is no memory section") {
    CHECK_THAT(jobs::plan_text(config, 4, 1, 0), !Catch::Contains("memory on"));
  }
}

TEST_CASE("the memory plan needs the model's config.json and says so") {
  const std::string config = write_config("/nonexistent/model");
  CHECK_THROWS_WITH(jobs::plan_text(config, 4, 1, 0, 80),
                    Catch::Contains("model.path /nonexistent/model has no config.json"));
}
