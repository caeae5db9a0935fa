// Decoder: every family against a float64 reference, batching, early exit, checked loading.
#include "gpujob/model/attention.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/decoder_weights.hpp"
#include "gpujob/model/rope.hpp"
#include "gpujob/model/safetensors.hpp"
#include "gpujob/util/error.hpp"
#include "model/tiny_model.hpp"

#include <set>
#include <utility>

// Last: libtorch's logging header defines its own CHECK, which Catch's must replace.
#include "catch.hpp"

using namespace gpujob::model;

namespace {

const std::vector<std::vector<int64_t>> kSequences = {
    {1, 5, 9, 17, 33, 2, 40, 41, 7},  // longer than the Gemma window (4)
    {1, 60, 3},
    {11},
    {1, 8, 8, 8, 13, 21, 34, 55},
};

struct Case {
  std::string kind;
  std::string layout = "causal";  // causal, published, v5
  bool sharded = false;
};

std::string build(const Case& k, ModelConfig* config_out, tiny::Weights* weights_out) {
  const auto json = tiny::config_for(k.kind);
  ModelConfig config = parse_model_config(json, "config.json");
  tiny::Weights w = tiny::random_weights(config, 1234);
  *config_out = config;
  *weights_out = w;
  return tiny::write_checkpoint(json, k.layout == "causal" ? w : tiny::to_multimodal(w, k.layout), k.sharded);
}

std::vector<int64_t> all_indices(const ModelConfig& c) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i <= c.num_layers; ++i) out.push_back(i);
  return out;
}

}  // namespace

TEST_CASE("every family matches the float64 reference at every layer (float32, 1e-4)") {
  const std::vector<Case> cases = {{"llama3"},         {"llama_linear_tied"}, {"qwen2", "causal", true},
                                   {"qwen3"},          {"gemma3"},            {"gemma3_capped"},
                                   {"gemma3_mm", "published"}, {"gemma3_mm", "v5"}};
  // With separate projections, and with stacked q/k/v and gate/up GEMMs (set_fused_ops).
  for (const auto& k : cases)
  for (const bool fused : {false, true}) {
    {
      INFO("model " << k.kind << " layout " << k.layout << (fused ? ", stacked projections" : ""));
      ModelConfig config;
      tiny::Weights weights;
      const std::string dir = build(k, &config, &weights);
      auto decoder = Decoder::load(dir, {});
      decoder->set_attention_backend(AttentionBackend::kFallback);
      decoder->set_fused_ops(fused);
      ForwardRequest request{all_indices(config), true};
      const auto batch = TokenBatch::from_sequences(kSequences);
      const auto out = decoder->forward(batch, request);
      REQUIRE(out.hidden.size() == static_cast<size_t>(config.num_layers + 1));
      for (size_t s = 0; s < kSequences.size(); ++s) {
        const auto ref = tiny::reference_forward(config, weights, kSequences[s]);
        const int64_t T = static_cast<int64_t>(kSequences[s].size());
        for (int64_t i = 0; i <= config.num_layers; ++i) {
          INFO("sequence " << s << " hidden index " << i);
          CHECK(tiny::relative_error(out.hidden[i][s].narrow(0, 0, T), ref.hidden[i]) < 1e-4);
        }
        CHECK(tiny::relative_error(out.logits[s].narrow(0, 0, T), ref.logits) < 1e-4);
      }
    }
  }
}

TEST_CASE("a sequence gives the same results alone and in a padded batch") {
  ModelConfig config;
  tiny::Weights weights;
  const std::string dir = build({"gemma3"}, &config, &weights);
  auto decoder = Decoder::load(dir, {});
  ForwardRequest request{all_indices(config), true};
  const auto batched = decoder->forward(TokenBatch::from_sequences(kSequences), request);
  for (size_t s = 0; s < kSequences.size(); ++s) {
    const auto alone = decoder->forward(TokenBatch::from_sequences({kSequences[s]}), request);
    const int64_t T = static_cast<int64_t>(kSequences[s].size());
    for (size_t i = 0; i < request.hidden_indices.size(); ++i)
      CHECK(at::allclose(batched.hidden[i][s].narrow(0, 0, T), alone.hidden[i][0], 1e-5, 1e-6));
    CHECK(at::allclose(batched.logits[s].narrow(0, 0, T), alone.logits[0], 1e-5, 1e-5));
  }
}

TEST_CASE("early exit returns exactly what the full pass returns for those layers") {
  ModelConfig config;
  tiny::Weights weights;
  const std::string dir = build({"qwen3"}, &config, &weights);
  auto decoder = Decoder::load(dir, {});
  const auto batch = TokenBatch::from_sequences(kSequences);
  const auto full = decoder->forward(batch, {all_indices(config), true});
  const auto early = decoder->forward(batch, {{1, 2}, false});
  REQUIRE(early.hidden.size() == 2);
  CHECK_FALSE(early.logits.defined());
  CHECK(at::equal(early.hidden[0], full.hidden[1]));
  CHECK(at::equal(early.hidden[1], full.hidden[2]));
  CHECK_THROWS_WITH(decoder->forward(batch, {{config.num_layers + 1}, false}),
                    Catch::Contains("hidden state index 4 is outside [0, 3]"));
}

TEST_CASE("queries at some rows of the deepest block give the full pass's values there") {
  const std::vector<Case> cases = {{"llama3"}, {"llama_linear_tied"}, {"qwen2"}, {"qwen3"},
                                   {"gemma3"}, {"gemma3_capped"}};
  for (const auto& k : cases)
  for (const bool fused : {false, true}) {
    INFO("model " << k.kind << (fused ? ", stacked projections" : ""));
    ModelConfig config;
    tiny::Weights weights;
    auto decoder = Decoder::load(build(k, &config, &weights), {});
    decoder->set_fused_ops(fused);
    const auto batch = TokenBatch::from_sequences(kSequences);
    const auto full = decoder->forward(batch, {all_indices(config), false});
    // Last, first and middle token of each row (gemma3's window of 4 is shorter than row 0).
    std::vector<std::vector<int64_t>> rows;
    for (int64_t n : batch.lengths) rows.push_back({n - 1, 0, (n - 1) / 2});
    for (int64_t deepest : {int64_t{1}, int64_t{2}, config.num_layers}) {
      INFO("deepest index " << deepest);
      ForwardRequest request{{1, deepest}, false};
      request.deepest_rows = rows;
      const auto out = decoder->forward(batch, request);
      if (deepest > 1) CHECK(at::equal(out.hidden[0], full.hidden[1]));  // shallower: whole, untouched
      const at::Tensor& picked = out.hidden[1];
      REQUIRE(picked.sizes() == at::IntArrayRef({batch.input_ids.size(0), 3, config.hidden_size}));
      for (size_t b = 0; b < rows.size(); ++b)
        for (size_t r = 0; r < 3; ++r) {
          INFO("row " << b << " position " << rows[b][r]);
          CHECK(tiny::relative_error(picked[b][r], full.hidden[deepest][b][rows[b][r]]) < 1e-5);
        }
    }
  }
  ModelConfig config;
  tiny::Weights weights;
  auto decoder = Decoder::load(build({"qwen3"}, &config, &weights), {});
  const auto batch = TokenBatch::from_sequences(kSequences);
  ForwardRequest bad{{2}, false};
  bad.deepest_rows = {{8}, {2}, {0}, {3, 4}};
  CHECK_THROWS_WITH(decoder->forward(batch, bad), Catch::Contains("deepest_rows[3] has 2 positions, row 0 has 1"));
  bad.deepest_rows = {{8}, {3}, {0}, {7}};
  CHECK_THROWS_WITH(decoder->forward(batch, bad), Catch::Contains("deepest_rows[1] position 3 is outside the sequence's 3 tokens"));
  bad.deepest_rows = {{8}, {2}, {0}, {7}};
  bad.logits = true;
  CHECK_THROWS_WITH(decoder->forward(batch, bad), Catch::Contains("deepest_rows cannot be combined with logits"));
}

TEST_CASE("fused and explicit attention agree where libtorch has the fused kernel") {
  if (!fused_attention_available()) {
    WARN("libtorch < 2.1: only the explicit attention path exists in this build");
    return;
  }
  ModelConfig config;
  tiny::Weights weights;
  const std::string dir = build({"gemma3"}, &config, &weights);
  auto decoder = Decoder::load(dir, {});
  const auto batch = TokenBatch::from_sequences(kSequences);
  decoder->set_attention_backend(AttentionBackend::kFallback);
  const auto a = decoder->forward(batch, {{}, true});
  decoder->set_attention_backend(AttentionBackend::kAuto);
  const auto b = decoder->forward(batch, {{}, true});
  CHECK(tiny::relative_error(b.logits, a.logits) < 1e-5);
  // Cached calls (masks over cache positions, the bias prepared once per call): prefill of
  // different lengths, then decode steps past the window.
  for (const std::string kind : {"gemma3", "qwen3"}) {
    INFO("model " << kind << ", cached");
    auto cached = Decoder::load(build({kind}, &config, &weights), {});
    cached->set_key_length_bucket(8);
    std::vector<at::Tensor> logits[2];
    for (const auto backend : {AttentionBackend::kFallback, AttentionBackend::kAuto}) {
      cached->set_attention_backend(backend);
      KvCache cache = cached->make_kv_cache(4, 32);
      auto& out = logits[backend == AttentionBackend::kAuto ? 1 : 0];
      out.push_back(cached->forward_cached(cache, {0, 1, 2, 3}, kSequences));
      for (int64_t step = 0; step < 6; ++step)
        out.push_back(cached->forward_cached(cache, {0, 1, 2, 3}, {{3 + step}, {4}, {5 + step}, {6}}));
    }
    for (size_t i = 0; i < logits[0].size(); ++i) {
      INFO("call " << i);
      CHECK(tiny::relative_error(logits[1][i], logits[0][i]) < 1e-5);
    }
  }
}

TEST_CASE("bfloat16 weights stay close to float32") {
  ModelConfig config;
  tiny::Weights weights;
  const std::string dir = build({"llama3"}, &config, &weights);
  auto f32 = Decoder::load(dir, {});
  LoadOptions options;
  options.dtype = at::kBFloat16;
  auto bf16 = Decoder::load(dir, options);
  const auto batch = TokenBatch::from_sequences(kSequences);
  const auto a = f32->forward(batch, {{}, true});
  const auto b = bf16->forward(batch, {{}, true});
  CHECK(b.logits.scalar_type() == at::kFloat);
  CHECK(tiny::relative_error(b.logits, a.logits) < 5e-2);
}

TEST_CASE("checked loading names the tensor, both shapes and the file") {
  const auto json = tiny::config_for("qwen2");
  ModelConfig config = parse_model_config(json, "config.json");
  const tiny::Weights good = tiny::random_weights(config, 7);

  SECTION("missing tensor") {
    auto w = good;
    w.erase("model.layers.1.self_attn.k_proj.bias");
    const std::string dir = tiny::write_checkpoint(json, w);
    CHECK_THROWS_WITH(Decoder::load(dir, {}),
                      dir + ": tensor model.layers.1.self_attn.k_proj.bias is missing (expected shape [16])");
  }
  SECTION("mis-shaped tensor") {
    auto w = good;
    w["model.layers.0.mlp.up_proj.weight"] = at::zeros({47, 32});
    const std::string dir = tiny::write_checkpoint(json, w);
    CHECK_THROWS_WITH(Decoder::load(dir, {}),
                      dir + "/model.safetensors: tensor model.layers.0.mlp.up_proj.weight has shape "
                            "[47, 32], expected [48, 32]");
  }
  SECTION("unexpected tensor") {
    auto w = good;
    w["model.layers.0.self_attn.o_proj.bias"] = at::zeros({32});
    const std::string dir = tiny::write_checkpoint(json, w);
    CHECK_THROWS_WITH(Decoder::load(dir, {}),
                      dir + "/model.safetensors: unexpected tensor model.layers.0.self_attn.o_proj.bias "
                            "(shape [32]) is not part of Qwen2ForCausalLM");
  }
  SECTION("vision tensors of the multimodal layout are skipped, text tensors still checked") {
    const auto mm_json = tiny::config_for("gemma3_mm");
    ModelConfig mm = parse_model_config(mm_json, "config.json");
    auto w = tiny::to_multimodal(tiny::random_weights(mm, 3), "published");
    CHECK_NOTHROW(Decoder::load(tiny::write_checkpoint(mm_json, w), {}));
    w.erase("language_model.model.norm.weight");
    const std::string dir = tiny::write_checkpoint(mm_json, w);
    CHECK_THROWS_WITH(Decoder::load(dir, {}),
                      dir + ": tensor language_model.model.norm.weight is missing (expected shape [32])");
  }
  SECTION("shard counts must divide the heads") {
    const std::string dir = tiny::write_checkpoint(json, good);
    LoadOptions options;
    options.shard_count = 3;
    CHECK_THROWS_WITH(Decoder::load(dir, options),
                      dir + ": 3 tensor-parallel shards do not divide num_attention_heads = 4");
    options.shard_count = 4;  // divides 4 heads but not 2 kv heads
    CHECK_THROWS_WITH(Decoder::load(dir, options),
                      dir + ": 4 tensor-parallel shards do not divide num_key_value_heads = 2");
  }
  SECTION("token ids outside the vocabulary") {
    auto decoder = Decoder::load(tiny::write_checkpoint(json, good), {});
    CHECK_THROWS_WITH(decoder->forward(TokenBatch::from_sequences({{1, 61}}), {{}, true}),
                      Catch::EndsWith("/config.json: token id 61 is outside the vocabulary [0, 61)"));
  }
}

TEST_CASE("layers with one rope share one frequency tensor, so a forward builds its tables once") {
  // Gemma 3's local layers use rope_local_base_freq, its global ones rope_theta: two tensors.
  for (const auto& [kind, distinct] : std::vector<std::pair<std::string, size_t>>{{"llama3", 1}, {"qwen3", 1},
                                                                                  {"gemma3", 2}}) {
    INFO("model " << kind);
    const auto json = tiny::config_for(kind);
    ModelConfig config = parse_model_config(json, "config.json");
    const std::string dir = tiny::write_checkpoint(json, tiny::random_weights(config, 5));
    const auto weights = load_decoder_weights(config, SafetensorsArchive::open_directory(dir), dir, {});
    REQUIRE(weights->inv_freq.size() == static_cast<size_t>(config.num_layers));
    std::set<const void*> storages;
    for (size_t l = 0; l < weights->inv_freq.size(); ++l) {
      storages.insert(weights->inv_freq[l].data_ptr());
      // Each layer's tensor holds that layer's own frequencies.
      const at::Tensor own = rope_inverse_frequencies(config.layers[l].rope, config.head_dim);
      CHECK(at::equal(weights->inv_freq[l], own));
    }
    CHECK(storages.size() == distinct);
  }
}
