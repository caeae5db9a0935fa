// Device memory plan of a rank: its weights, and how many generation slots (KV cache) fit in the
// memory it may use.
#pragma once

#include <ATen/core/ATen_fwd.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

#include "gpujob/model/kv_cache.hpp"

namespace gpujob::model {

struct ModelConfig;

constexpr double kBytesPerGiB = 1024.0 * 1024.0 * 1024.0;

// "12.34 GiB": how memory plans are written in logs, errors and `gpujob plan`.
std::string format_gib(double bytes, int decimals = 2);

// Bytes of the decoder's weights in `dtype` as Decoder::load holds them (one full copy: embedding,
// every block, final norm, and the LM head when it is not tied; vision towers are never loaded).
int64_t decoder_weight_bytes(const ModelConfig& config, at::ScalarType dtype);

// KV cache size for a memory budget.
struct KvCachePlan {
  int64_t n_slots = 0;          // sequences decoded together
  int64_t max_len = 0;          // positions per slot, tokens
  int64_t bytes = 0;            // what the cache takes
  int64_t workspace_bytes = 0;  // kept free for the forward passes (plan_generation_memory)
};

// The most slots (at most max_slots) of max_len positions each that fit in budget_bytes, given the
// cache's per-token size (KvCache::bytes_per_token). The budget is for the cache alone: activations of
// a forward pass must be left out of it by the caller. Throws a one-line error when not even one slot
// fits, naming the budget and what one slot needs.
KvCachePlan plan_kv_cache(int64_t budget_bytes, const KvCacheShape& shape, at::ScalarType dtype,
                          int64_t max_len, int64_t max_slots);

// Peak device memory of the generator's forward passes besides the weights and the cache: a prefill
// call of up to `prefill_tokens` padded tokens whose longest prompt is `longest_prompt` (its layer
// activations, the attention scores of the unfused path), and the float32 logits and sampling
// temporaries of `n_slots` rows. An estimate with a safety factor: it only has to keep the cache
// from taking the memory the passes need.
int64_t generation_workspace_bytes(const ModelConfig& config, at::ScalarType dtype, int64_t prefill_tokens,
                                   int64_t longest_prompt, int64_t n_slots);

// Peak device memory of one extraction forward pass besides the weights: `batch` sequences of
// `seq_len` tokens through the blocks up to the deepest captured layer (early exit), the
// `captured_layers` hidden states kept for capture, their float32 copies for pooling, and the
// attention scores where attention is not fused. An estimate with the same safety factor as
// generation_workspace_bytes.
int64_t extraction_workspace_bytes(const ModelConfig& config, at::ScalarType dtype, int64_t batch, int64_t seq_len,
                                   int64_t captured_layers);

// The largest batch (at most max_batch, at least 0) of seq_len-token sequences whose extraction
// workspace fits in available_bytes.
int64_t extraction_batch_that_fits(int64_t available_bytes, const ModelConfig& config, at::ScalarType dtype,
                                   int64_t seq_len, int64_t captured_layers, int64_t max_batch);

// The generator's cache for `available_bytes` of device memory (what the rank may still allocate
// under its memory fraction once the weights are loaded; < 0: no limit, as on the CPU): at most
// max_slots slots (the configured batch size), fewer when the cache and the workspace of the
// forward passes would not fit. Throws a one-line error naming the memory when one slot does not fit.
KvCachePlan plan_generation_memory(int64_t available_bytes, const ModelConfig& config, const KvCacheShape& shape,
                                   at::ScalarType dtype, int64_t max_len, int64_t max_slots,
                                   int64_t max_prefill_tokens, int64_t longest_prompt);

}  // namespace gpujob::model
