// Loading a decoder's weights: name layout per architecture, shapes from the config, TP slicing.
#include "gpujob/model/decoder_weights.hpp"

#include <algorithm>
#include <utility>

#include "gpujob/model/rope.hpp"
#include "gpujob/model/weight_loader.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::model {

namespace {

// Concatenates the tensors along dim 0 into *stacked and replaces each by its row block of it:
// the same values in one allocation (the separate tensors are freed).
void stack_rows(std::initializer_list<at::Tensor*> parts, at::Tensor* stacked) {
  std::vector<at::Tensor> tensors;
  for (at::Tensor* t : parts) tensors.push_back(*t);
  *stacked = at::cat(tensors, 0);
  tensors.clear();
  int64_t row = 0;
  for (at::Tensor* t : parts) {
    const int64_t n = t->size(0);
    *t = stacked->narrow(0, row, n);
    row += n;
  }
}

}  // namespace

std::unique_ptr<DecoderWeights> load_decoder_weights(ModelConfig& config,
                                                     const SafetensorsArchive& archive,
                                                     const std::string& model_dir,
                                                     const LoadOptions& options) {
  const auto dtype = options.dtype;
  GPUJOB_CHECK(dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf, model_dir,
               ": model dtype must be float32, bfloat16 or float16, found ", c10::toString(dtype));
  const int64_t n = options.shard_count;
  const int64_t r = options.shard_index;
  GPUJOB_CHECK(n >= 1 && r >= 0 && r < n, model_dir, ": shard index ", r, " of ", n, " is out of range");
  GPUJOB_CHECK(config.n_heads % n == 0, model_dir, ": ", n,
               " tensor-parallel shards do not divide num_attention_heads = ", config.n_heads);
  GPUJOB_CHECK(config.n_kv_heads % n == 0, model_dir, ": ", n,
               " tensor-parallel shards do not divide num_key_value_heads = ", config.n_kv_heads);
  GPUJOB_CHECK(config.intermediate_size % n == 0, model_dir, ": ", n,
               " tensor-parallel shards do not divide intermediate_size = ", config.intermediate_size);

  std::string base = "model.";
  std::string head_name = "lm_head.weight";
  WeightLoader loader(archive, model_dir, dtype, options.device);
  if (config.layout != WeightLayout::kCausalLM) {
    if (archive.contains("model.language_model.embed_tokens.weight")) {
      config.layout = WeightLayout::kMultimodalV5;
      base = "model.language_model.";
      loader.skip_prefix("model.vision_tower.");
      loader.skip_prefix("model.multi_modal_projector.");
    } else {
      config.layout = WeightLayout::kMultimodalPublished;
      base = "language_model.model.";
      head_name = "language_model.lm_head.weight";
      loader.skip_prefix("vision_tower.");
      loader.skip_prefix("multi_modal_projector.");
    }
  }

  const int64_t H = config.hidden_size;
  const int64_t D = config.head_dim;
  const int64_t I = config.intermediate_size;
  const int64_t V = config.vocab_size;
  const ShardSlice rows{0, r, n};  // column-parallel: output features
  const ShardSlice cols{1, r, n};  // row-parallel: input features

  auto w = std::make_unique<DecoderWeights>();
  w->local_heads = config.n_heads / n;
  w->local_kv_heads = config.n_kv_heads / n;
  w->embed = loader.get(base + "embed_tokens.weight", {V, H});
  w->final_norm = loader.get(base + "norm.weight", {H});
  if (config.tie_word_embeddings) {
    w->lm_head = w->embed;
    loader.allow(head_name);  // some tied checkpoints store the copy anyway
  } else {
    w->lm_head = loader.get(head_name, {V, H});
  }
  w->layers.resize(config.num_layers);
  for (int64_t l = 0; l < config.num_layers; ++l) {
    const std::string p = base + "layers." + std::to_string(l) + ".";
    auto& L = w->layers[l];
    L.attn_norm = loader.get(p + "input_layernorm.weight", {H});
    if (config.sandwich_norms) {
      L.post_attn_norm = loader.get(p + "post_attention_layernorm.weight", {H});
      L.mlp_norm = loader.get(p + "pre_feedforward_layernorm.weight", {H});
      L.post_mlp_norm = loader.get(p + "post_feedforward_layernorm.weight", {H});
    } else {
      L.mlp_norm = loader.get(p + "post_attention_layernorm.weight", {H});
    }
    const int64_t q_out = config.n_heads * D;
    const int64_t kv_out = config.n_kv_heads * D;
    L.q = loader.get(p + "self_attn.q_proj.weight", {q_out, H}, true, rows);
    L.k = loader.get(p + "self_attn.k_proj.weight", {kv_out, H}, true, rows);
    L.v = loader.get(p + "self_attn.v_proj.weight", {kv_out, H}, true, rows);
    if (config.qkv_bias) {
      L.q_bias = loader.get(p + "self_attn.q_proj.bias", {q_out}, true, rows);
      L.k_bias = loader.get(p + "self_attn.k_proj.bias", {kv_out}, true, rows);
      L.v_bias = loader.get(p + "self_attn.v_proj.bias", {kv_out}, true, rows);
    }
    if (config.qk_norm) {
      L.q_norm = loader.get(p + "self_attn.q_norm.weight", {D});
      L.k_norm = loader.get(p + "self_attn.k_norm.weight", {D});
    }
    stack_rows({&L.q, &L.k, &L.v}, &L.qkv);
    if (config.qkv_bias) stack_rows({&L.q_bias, &L.k_bias, &L.v_bias}, &L.qkv_bias);
    L.o = loader.get(p + "self_attn.o_proj.weight", {H, q_out}, true, cols);
    L.gate = loader.get(p + "mlp.gate_proj.weight", {I, H}, true, rows);
    L.up = loader.get(p + "mlp.up_proj.weight", {I, H}, true, rows);
    stack_rows({&L.gate, &L.up}, &L.gate_up);
    L.down = loader.get(p + "mlp.down_proj.weight", {H, I}, true, cols);
  }
  loader.check_all_used(config.architecture);

  // Layers with one rope share one tensor: a forward builds the cos/sin tables once per tensor,
  // not once per layer (a decode step would otherwise spend a handful of kernels per layer on it).
  std::vector<std::pair<RopeSpec, at::Tensor>> distinct;
  const auto same = [](const RopeSpec& a, const RopeSpec& b) {
    return a.type == b.type && a.theta == b.theta && a.factor == b.factor && a.low_freq_factor == b.low_freq_factor &&
           a.high_freq_factor == b.high_freq_factor && a.original_max_position == b.original_max_position;
  };
  for (const auto& layer : config.layers) {
    auto found = std::find_if(distinct.begin(), distinct.end(), [&](const auto& d) { return same(d.first, layer.rope); });
    if (found == distinct.end()) {
      distinct.emplace_back(layer.rope, rope_inverse_frequencies(layer.rope, D).to(options.device));
      found = distinct.end() - 1;
    }
    w->inv_freq.push_back(found->second);
  }
  return w;
}

}  // namespace gpujob::model
