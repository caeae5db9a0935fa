#include "gpujob/model/kv_cache_plan.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "gpujob/model/attention.hpp"
#include "gpujob/model/model_config.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::model {
namespace {

// Temporaries the estimate does not itemise (allocator rounding, kernels' scratch, cuBLAS workspace).
constexpr double kSafetyFactor = 1.25;
constexpr int64_t kFixedScratchBytes = 64LL << 20;

}  // namespace

int64_t decoder_weight_bytes(const ModelConfig& c, at::ScalarType dtype) {
  const int64_t q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim, h = c.hidden_size;
  int64_t per_layer = h * q + 2 * h * kv + q * h  // q, k, v, o projections
                      + 3 * h * c.intermediate_size  // gate, up, down
                      + 2 * h;                        // input and post-attention norms
  if (c.qkv_bias) per_layer += q + 2 * kv;
  if (c.qk_norm) per_layer += 2 * c.head_dim;
  if (c.sandwich_norms) per_layer += 2 * h;  // Gemma 3's extra pre/post feed-forward norms
  int64_t total = c.num_layers * per_layer + c.vocab_size * h + h;  // blocks, embedding, final norm
  if (!c.tie_word_embeddings) total += c.vocab_size * h;
  return total * static_cast<int64_t>(c10::elementSize(dtype));
}

std::string format_gib(double bytes, int decimals) {
  char text[48];
  std::snprintf(text, sizeof text, "%.*f GiB", decimals, bytes / kBytesPerGiB);
  return text;
}

KvCachePlan plan_kv_cache(int64_t budget_bytes, const KvCacheShape& shape, at::ScalarType dtype,
                          int64_t max_len, int64_t max_slots) {
  GPUJOB_CHECK(max_len >= 1 && max_slots >= 1, "plan_kv_cache: expected max_len >= 1 and max_slots >= 1, found ",
               max_len, " and ", max_slots);
  const int64_t per_slot = KvCache::bytes_per_token(shape, dtype) * max_len;
  const int64_t fit = per_slot > 0 ? budget_bytes / per_slot : max_slots;
  GPUJOB_CHECK(fit >= 1, "KV cache: a budget of ", budget_bytes, " bytes does not hold one slot of ", max_len,
               " positions (", per_slot, " bytes); lower max_new_tokens or the prompt length, or raise the memory fraction");
  KvCachePlan plan;
  plan.n_slots = std::min(fit, max_slots);
  plan.max_len = max_len;
  plan.bytes = plan.n_slots * per_slot;
  return plan;
}

int64_t generation_workspace_bytes(const ModelConfig& config, at::ScalarType dtype, int64_t prefill_tokens,
                                   int64_t longest_prompt, int64_t n_slots) {
  const int64_t longest = std::max<int64_t>(1, longest_prompt);
  // A prefill call takes up to prefill_tokens padded tokens, but a longer prompt goes alone, and
  // never more than every slot at once.
  const int64_t tokens = std::min(std::max(prefill_tokens, longest), std::max<int64_t>(1, n_slots) * longest);
  const int64_t rows = std::max<int64_t>(1, tokens / longest);
  // Live per token inside one block: residual, normed input, attention output and its projection,
  // q/k/v, the attention result, and the MLP's gate, up and gated product.
  const int64_t q_width = config.n_heads * config.head_dim;
  const int64_t kv_width = config.n_kv_heads * config.head_dim;
  const int64_t per_token = 4 * config.hidden_size + q_width + 2 * kv_width + q_width + 3 * config.intermediate_size;
  double bytes = static_cast<double>(tokens) * per_token * static_cast<double>(c10::elementSize(dtype));
  // The explicit attention path holds the float32 scores and their softmax for a whole call.
  const bool explicit_attention = !fused_attention_available() || config.attn_logit_softcapping > 0;
  if (explicit_attention) bytes += 2.0 * rows * config.n_heads * static_cast<double>(longest) * longest * 4;
  // Float32 logits of every slot's last token, their softmax and the sampler's sorted copy.
  bytes += 3.0 * std::max<int64_t>(1, n_slots) * config.vocab_size * 4;
  return static_cast<int64_t>(bytes * kSafetyFactor) + kFixedScratchBytes;
}

int64_t extraction_workspace_bytes(const ModelConfig& config, at::ScalarType dtype, int64_t batch, int64_t seq_len,
                                   int64_t captured_layers) {
  const double tokens = static_cast<double>(std::max<int64_t>(1, batch)) * std::max<int64_t>(1, seq_len);
  const int64_t q_width = config.n_heads * config.head_dim;
  const int64_t kv_width = config.n_kv_heads * config.head_dim;
  const int64_t per_token = 4 * config.hidden_size + q_width + 2 * kv_width + q_width + 3 * config.intermediate_size;
  const double element = static_cast<double>(c10::elementSize(dtype));
  double bytes = tokens * per_token * element;
  // The captured hidden states stay until pooled, and pooling works on float32 copies.
  bytes += tokens * config.hidden_size * (std::max<int64_t>(1, captured_layers) * element + 4);
  const bool explicit_attention = !fused_attention_available() || config.attn_logit_softcapping > 0;
  if (explicit_attention) {
    bytes += 2.0 * std::max<int64_t>(1, batch) * config.n_heads * static_cast<double>(seq_len) * seq_len * 4;
  }
  return static_cast<int64_t>(bytes * kSafetyFactor) + kFixedScratchBytes;
}

int64_t extraction_batch_that_fits(int64_t available_bytes, const ModelConfig& config, at::ScalarType dtype,
                                   int64_t seq_len, int64_t captured_layers, int64_t max_batch) {
  for (int64_t batch = max_batch; batch >= 1; --batch) {
    if (extraction_workspace_bytes(config, dtype, batch, seq_len, captured_layers) <= available_bytes) return batch;
  }
  return 0;
}

KvCachePlan plan_generation_memory(int64_t available_bytes, const ModelConfig& config, const KvCacheShape& shape,
                                   at::ScalarType dtype, int64_t max_len, int64_t max_slots,
                                   int64_t max_prefill_tokens, int64_t longest_prompt) {
  if (available_bytes < 0) {  // no limit known (CPU): the configured batch size
    KvCachePlan plan = plan_kv_cache(INT64_MAX, shape, dtype, max_len, max_slots);
    plan.workspace_bytes = generation_workspace_bytes(config, dtype, max_prefill_tokens, longest_prompt, plan.n_slots);
    return plan;
  }
  // The workspace grows with the slots (logits): the most slots whose cache and workspace both fit.
  const int64_t per_slot = KvCache::bytes_per_token(shape, dtype) * max_len;
  for (int64_t slots = max_slots; slots >= 1; --slots) {
    const int64_t workspace = generation_workspace_bytes(config, dtype, max_prefill_tokens, longest_prompt, slots);
    if (workspace + slots * per_slot > available_bytes) continue;
    KvCachePlan plan = plan_kv_cache(available_bytes - workspace, shape, dtype, max_len, slots);
    plan.workspace_bytes = workspace;
    return plan;
  }
  const int64_t workspace = generation_workspace_bytes(config, dtype, max_prefill_tokens, longest_prompt, 1);
  fail("KV cache: ", format_gib(available_bytes, 3), " of device memory left under the memory fraction after the "
       "weights, but one slot of ", max_len, " positions needs ", format_gib(per_slot, 3), " plus ",
       format_gib(workspace, 3), " for the forward passes; raise the role's memory_fraction or lower generation.max_model_len, "
       "max_new_tokens or max_prefill_tokens");
}

}  // namespace gpujob::model
