// KV cache plan: slots from a memory budget, with room kept for the forward passes.
#include <ATen/ATen.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "gpujob/model/kv_cache_plan.hpp"
#include "gpujob/model/model_config.hpp"
#include "gpujob/model/safetensors.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::model;

namespace {

// A Qwen3-8B-like shape, small enough to reason about.
ModelConfig eight_b_shape() {
  ModelConfig c;
  c.vocab_size = 151936;
  c.hidden_size = 4096;
  c.intermediate_size = 12288;
  c.num_layers = 36;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 128;
  return c;
}

}  // namespace

TEST_CASE("KV cache plan from a memory budget") {
  // keys + values x 4 layers x 2 heads x 8 features x 4 bytes = 512 bytes per token.
  KvCacheShape shape{4, 2, 8};
  CHECK(KvCache::bytes_per_token(shape, at::kFloat) == 512);
  KvCachePlan plan = plan_kv_cache(200000, shape, at::kFloat, 100, 64);
  CHECK(plan.n_slots == 3);  // 3 x 51200 <= 200000 < 4 x 51200
  CHECK(plan.max_len == 100);
  CHECK(plan.bytes == 153600);
  CHECK(plan_kv_cache(200000, shape, at::kFloat, 100, 2).n_slots == 2);
  CHECK(plan_kv_cache(200000, shape, at::kBFloat16, 100, 64).n_slots == 7);
  CHECK_THROWS_WITH(plan_kv_cache(1000, shape, at::kFloat, 100, 4), Catch::Contains("51200 bytes"));
}

TEST_CASE("the forward passes' workspace grows with the prefill size, the prompt and the slots") {
  const ModelConfig c = eight_b_shape();
  const int64_t base = generation_workspace_bytes(c, at::kBFloat16, 2048, 256, 16);
  CHECK(generation_workspace_bytes(c, at::kBFloat16, 4096, 256, 16) > base);
  CHECK(generation_workspace_bytes(c, at::kBFloat16, 2048, 256, 32) > base);
  CHECK(generation_workspace_bytes(c, at::kFloat, 2048, 256, 16) > base);
  // A prompt longer than max_prefill_tokens is prefilled alone: it sets the size.
  CHECK(generation_workspace_bytes(c, at::kBFloat16, 512, 4096, 1) > generation_workspace_bytes(c, at::kBFloat16, 512, 512, 1));
  // At least the float32 logits of every slot (3 copies) and one prefill's hidden states.
  CHECK(base >= 3 * 16 * c.vocab_size * 4 + 2048 * c.hidden_size * 2);
  // And not absurdly more: under 4 GiB for this shape and prefill.
  CHECK(base < (4LL << 30));
}

TEST_CASE("generation memory: as many slots as the batch size asks when they fit, fewer when not") {
  const ModelConfig c = eight_b_shape();
  const KvCacheShape shape{c.num_layers, c.n_kv_heads, c.head_dim};
  const int64_t max_len = 640;  // 256-token prompts + 384 new tokens
  const int64_t per_slot = KvCache::bytes_per_token(shape, at::kBFloat16) * max_len;
  CHECK(per_slot == 2LL * 36 * 8 * 128 * 2 * 640);

  SECTION("no limit known (CPU): the batch size") {
    const KvCachePlan plan = plan_generation_memory(-1, c, shape, at::kBFloat16, max_len, 32, 8192, 256);
    CHECK(plan.n_slots == 32);
    CHECK(plan.bytes == 32 * per_slot);
  }
  SECTION("plenty of memory: the batch size") {
    const KvCachePlan plan = plan_generation_memory(60LL << 30, c, shape, at::kBFloat16, max_len, 32, 8192, 256);
    CHECK(plan.n_slots == 32);
    CHECK(plan.bytes + plan.workspace_bytes <= (60LL << 30));
  }
  SECTION("exactly 10 slots and their workspace: 10 slots") {
    const int64_t workspace = generation_workspace_bytes(c, at::kBFloat16, 8192, 256, 10);
    const int64_t available = workspace + 10 * per_slot + per_slot / 2;
    const KvCachePlan plan = plan_generation_memory(available, c, shape, at::kBFloat16, max_len, 32, 8192, 256);
    CHECK(plan.n_slots == 10);
    CHECK(plan.bytes + plan.workspace_bytes <= available);
  }
  SECTION("not even one slot: a one-line error that says what to change") {
    CHECK_THROWS_WITH(plan_generation_memory(per_slot, c, shape, at::kBFloat16, max_len, 32, 8192, 256),
                      Catch::Contains("one slot of 640 positions") && Catch::Contains("memory_fraction"));
  }
}

TEST_CASE("decoder weight bytes equal the tensors every golden checkpoint stores for the decoder") {
  const char* source = std::getenv("GPUJOB_SOURCE_DIR");
  const std::filesystem::path root = std::filesystem::path(source ? source : ".") / "tests/data/models";
  if (!std::filesystem::exists(root)) {
    WARN("no " << root.string() << ": skipped");
    return;
  }
  int checked = 0;
  for (const auto& dir : std::filesystem::directory_iterator(root)) {
    if (!std::filesystem::exists(dir.path() / "config.json")) continue;
    INFO("checkpoint " << dir.path().filename().string());
    const ModelConfig config = load_model_config((dir.path() / "config.json").string());
    const SafetensorsArchive archive = SafetensorsArchive::open_directory(dir.path().string());
    int64_t elements = 0;
    for (const std::string& name : archive.names()) {
      // Not the decoder's: the vision tower, and a tied LM head's stored copy.
      if (name.find("vision_tower.") != std::string::npos || name.find("multi_modal_projector.") != std::string::npos) continue;
      if (config.tie_word_embeddings && name.find("lm_head.") != std::string::npos) continue;
      int64_t n = 1;
      for (int64_t d : archive.entry(name).shape) n *= d;
      elements += n;
    }
    CHECK(decoder_weight_bytes(config, at::kFloat) == 4 * elements);
    CHECK(decoder_weight_bytes(config, at::kBFloat16) == 2 * elements);
    ++checked;
  }
  CHECK(checked >= 8);
}

TEST_CASE("the extraction workspace grows with batch, length and captured layers; the batch that fits") {
  const ModelConfig c = eight_b_shape();
  const int64_t base = extraction_workspace_bytes(c, at::kBFloat16, 16, 512, 1);
  CHECK(extraction_workspace_bytes(c, at::kBFloat16, 32, 512, 1) > base);
  CHECK(extraction_workspace_bytes(c, at::kBFloat16, 16, 1024, 1) > base);
  CHECK(extraction_workspace_bytes(c, at::kBFloat16, 16, 512, 3) > base);
  // At least the block activations of every token.
  CHECK(base >= 16LL * 512 * (4 * c.hidden_size + 3 * c.intermediate_size) * 2);
  const int64_t seven = extraction_workspace_bytes(c, at::kBFloat16, 7, 512, 1);
  CHECK(extraction_batch_that_fits(seven, c, at::kBFloat16, 512, 1, 16) == 7);
  CHECK(extraction_batch_that_fits(seven - 1, c, at::kBFloat16, 512, 1, 16) == 6);
  CHECK(extraction_batch_that_fits(int64_t{1} << 50, c, at::kBFloat16, 512, 1, 16) == 16);
  CHECK(extraction_batch_that_fits(1000, c, at::kBFloat16, 512, 1, 16) == 0);
}
