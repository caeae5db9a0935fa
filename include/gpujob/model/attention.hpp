// Attention core: masks (causal, sliding window, cache lengths) and fused or explicit softmax attention.
#pragma once

#include <ATen/ATen.h>

namespace gpujob::model {

enum class AttentionBackend;  // decoder.hpp

struct AttentionParams {
  double scale = 1.0;       // multiplies q.k
  double softcap = 0.0;     // tanh soft-capping of the scores; 0: none
};

// q: [batch, heads, q_len, head_dim]; k, v: [batch, kv_heads, k_len, head_dim] (kv_heads divides
// heads; query head h reads kv head h / (heads / kv_heads)); mask: bool broadcastable to
// [batch, 1, q_len, k_len], true where a query may attend. Every query row must allow at least
// one key. An undefined mask means plain causal attention with q_len == k_len (query i sees keys
// 0..i): the fused kernel then runs without a mask tensor, which lets it pick its fastest
// (flash) implementation. Returns [batch, heads, q_len, head_dim]. `bias`: the mask as
// fused_attention_bias prepared it for these shapes (optional; used on the fused path only).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& mask, const AttentionParams& params, AttentionBackend backend,
                     const at::Tensor& bias = {});

// The mask as the fused kernel takes it for `heads` query heads over `kv_heads` key heads: query
// heads folded into rows per kv head, additive (0 where allowed, -inf elsewhere) in `dtype`. A
// forward builds it once and every layer passes it to attention(), instead of each layer grouping
// and converting the boolean mask again (kernels that show at decode, where each is most of a
// layer's attention time). Undefined when attention() would not take the fused path.
at::Tensor fused_attention_bias(const at::Tensor& mask, int64_t heads, int64_t kv_heads, at::ScalarType dtype,
                                const AttentionParams& params, AttentionBackend backend);

// The explicit path (matmul, mask, float32 softmax), as HF's eager attention.
at::Tensor attention_explicit(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& mask, const AttentionParams& params);

// True when this libtorch build has the fused scaled-dot-product attention.
bool fused_attention_available();

// The plain causal mask, bool [1, 1, q_len, k_len] (k_len >= q_len): query i sees keys 0..i, the
// alignment of the fused kernel's is_causal (queries and keys both start at position 0).
at::Tensor causal_mask(int64_t q_len, int64_t k_len, const at::TensorOptions& options);

// Mask for queries at positions q_pos [batch, q_len] over keys at positions 0..k_len-1:
// key j is visible when j <= q_pos and, with a window w > 0, j > q_pos - w. bool [batch, 1, q_len, k_len].
at::Tensor position_mask(const at::Tensor& q_pos, int64_t k_len, int64_t window);

}  // namespace gpujob::model
