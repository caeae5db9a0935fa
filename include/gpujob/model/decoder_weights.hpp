// DecoderWeights: the tensors of one decoder (or of one tensor-parallel shard), loaded through WeightLoader.
#pragma once

#include "gpujob/model/decoder.hpp"
#include "gpujob/model/model_config.hpp"
#include "gpujob/model/safetensors.hpp"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace gpujob::model {

// One block. Column-parallel (sliced by output rows): q, k, v (and biases), gate, up.
// Row-parallel (sliced by input columns): o, down; their outputs are summed over shards.
struct LayerWeights {
  at::Tensor attn_norm;      // [hidden] before attention (input_layernorm)
  at::Tensor post_attn_norm; // [hidden] after attention (Gemma 3 only)
  at::Tensor mlp_norm;       // [hidden] before the MLP
  at::Tensor post_mlp_norm;  // [hidden] after the MLP (Gemma 3 only)
  at::Tensor q, k, v;        // [local heads * head_dim, hidden], [local kv heads * head_dim, hidden]
  at::Tensor q_bias, k_bias, v_bias;  // Qwen2 only
  at::Tensor q_norm, k_norm; // [head_dim] (Qwen3, Gemma 3)
  at::Tensor o;              // [hidden, local heads * head_dim]
  at::Tensor gate, up;       // [local intermediate, hidden]
  at::Tensor down;           // [hidden, local intermediate]
  // The same weights stacked: q, k and v (and their biases) are row blocks of qkv, gate and up of
  // gate_up (views, no second copy), so one GEMM can compute each group (Decoder::set_fused_ops).
  at::Tensor qkv, qkv_bias, gate_up;
};

class DecoderWeights {
 public:
  at::Tensor embed;          // [vocab, hidden], replicated on every shard
  at::Tensor final_norm;     // [hidden]
  at::Tensor lm_head;        // [vocab, hidden]; the embedding itself when tied
  std::vector<LayerWeights> layers;
  std::vector<at::Tensor> inv_freq;  // per layer, float32 [head_dim / 2] on the device
  int64_t local_heads = 0;           // query heads of this shard
  int64_t local_kv_heads = 0;        // kv heads of this shard
};

// Loads every tensor the config needs from `archive` (the checkpoint in `model_dir`), sliced
// for options.shard_index / shard_count, and fails on missing, mis-shaped or unexpected ones.
// Picks the transformers 5 multimodal layout when the checkpoint uses it.
std::unique_ptr<DecoderWeights> load_decoder_weights(ModelConfig& config,
                                                     const SafetensorsArchive& archive,
                                                     const std::string& model_dir,
                                                     const LoadOptions& options);

}  // namespace gpujob::model
