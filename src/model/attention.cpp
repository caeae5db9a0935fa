// Attention: the fused kernel on libtorch >= 2.1, the explicit HF-eager computation otherwise.
#include "gpujob/model/attention.hpp"

#include "gpujob/model/decoder.hpp"

#include <torch/version.h>

#include <limits>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define GPUJOB_HAVE_FUSED_ATTENTION 1
#else
#define GPUJOB_HAVE_FUSED_ATTENTION 0
#endif

namespace gpujob::model {
namespace {

// GQA: repeat each kv head for the query heads that share it (head-major, as HF's repeat_kv).
at::Tensor repeat_kv(const at::Tensor& x, int64_t heads) {
  const int64_t kv_heads = x.size(1);
  if (kv_heads == heads) return x;
  return x.repeat_interleave(heads / kv_heads, 1);
}

}  // namespace

bool fused_attention_available() { return GPUJOB_HAVE_FUSED_ATTENTION != 0; }

at::Tensor attention_explicit(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& mask, const AttentionParams& params) {
  const int64_t heads = q.size(1);
  at::Tensor keys = repeat_kv(k, heads);
  at::Tensor values = repeat_kv(v, heads);
  at::Tensor scores = at::matmul(q, keys.transpose(2, 3)) * params.scale;
  if (params.softcap > 0) scores = at::tanh(scores / params.softcap) * params.softcap;
  // The lowest finite value, not -inf, as HF: masked products stay finite everywhere.
  scores = scores.to(at::kFloat).masked_fill(mask.logical_not(), std::numeric_limits<float>::lowest());
  at::Tensor probs = at::softmax(scores, -1).to(q.scalar_type());
  return at::matmul(probs, values);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& mask, const AttentionParams& params, AttentionBackend backend) {
#if GPUJOB_HAVE_FUSED_ATTENTION
  // The fused kernel has no soft-capping; those models take the explicit path.
  if (backend == AttentionBackend::kAuto && params.softcap <= 0) {
    const int64_t heads = q.size(1);
    return at::scaled_dot_product_attention(q, repeat_kv(k, heads), repeat_kv(v, heads), mask,
                                            0.0, false, params.scale);
  }
#else
  (void)backend;
#endif
  return attention_explicit(q, k, v, mask, params);
}

at::Tensor position_mask(const at::Tensor& q_pos, int64_t k_len, int64_t window) {
  at::Tensor key_pos = at::arange(k_len, q_pos.options()).view({1, 1, k_len});
  at::Tensor qp = q_pos.unsqueeze(-1);  // [batch, q_len, 1]
  at::Tensor visible = key_pos <= qp;
  if (window > 0) visible = visible.logical_and(key_pos > qp - window);
  return visible.unsqueeze(1);
}

}  // namespace gpujob::model
