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
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
#define GPUJOB_HAVE_GQA_ATTENTION 1
#else
#define GPUJOB_HAVE_GQA_ATTENTION 0
#endif

namespace gpujob::model {
namespace {

// GQA without copying keys and values: query head h reads kv head h / n_rep, so the n_rep
// query heads of one kv head are folded into its query rows, [B, kv, n_rep * T, D], and the
// mask rows repeated to match. Each score is the same dot product as with repeated keys.
struct Grouped {
  at::Tensor q, mask;
  int64_t n_rep = 1;
};

// The mask rows of q_len queries repeated for n_rep query heads per kv head.
at::Tensor group_mask(const at::Tensor& mask, int64_t q_len, int64_t k_len, int64_t n_rep) {
  if (n_rep == 1) return mask;
  return mask.expand({mask.size(0), 1, q_len, k_len}).unsqueeze(2)
      .expand({mask.size(0), 1, n_rep, q_len, k_len}).reshape({mask.size(0), 1, n_rep * q_len, k_len});
}

Grouped group_queries(const at::Tensor& q, const at::Tensor& k, const at::Tensor& mask) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t kv = k.size(1), K = k.size(2);
  Grouped g{q, mask, H / kv};
  if (g.n_rep == 1) return g;
  g.q = q.reshape({B, kv, g.n_rep * T, D});
  if (mask.defined()) g.mask = group_mask(mask, T, K, g.n_rep);
  return g;
}

at::Tensor ungroup(const at::Tensor& out, const at::Tensor& q) {
  return out.reshape(q.sizes());
}

}  // namespace

bool fused_attention_available() { return GPUJOB_HAVE_FUSED_ATTENTION != 0; }

at::Tensor causal_mask(int64_t q_len, int64_t k_len, const at::TensorOptions& options) {
  return at::ones({q_len, k_len}, options.dtype(at::kBool)).tril().view({1, 1, q_len, k_len});
}

at::Tensor attention_explicit(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& mask, const AttentionParams& params) {
  const Grouped g = group_queries(q, k, mask.defined() ? mask : causal_mask(q.size(2), k.size(2), q.options()));
  at::Tensor scores = at::matmul(g.q, k.transpose(2, 3)) * params.scale;
  if (params.softcap > 0) scores = at::tanh(scores / params.softcap) * params.softcap;
  // The lowest finite value, not -inf, as HF: masked products stay finite everywhere.
  scores = scores.to(at::kFloat).masked_fill(g.mask.logical_not(), std::numeric_limits<float>::lowest());
  at::Tensor probs = at::softmax(scores, -1).to(q.scalar_type());
  return ungroup(at::matmul(probs, v), q);
}

bool takes_fused_path(const AttentionParams& params, AttentionBackend backend) {
  // The fused kernel has no soft-capping; those models take the explicit path.
  return GPUJOB_HAVE_FUSED_ATTENTION && backend == AttentionBackend::kAuto && params.softcap <= 0;
}

at::Tensor fused_attention_bias(const at::Tensor& mask, int64_t heads, int64_t kv_heads, at::ScalarType dtype,
                                const AttentionParams& params, AttentionBackend backend) {
  if (!mask.defined() || !takes_fused_path(params, backend)) return {};
  const int64_t q_len = mask.size(2), k_len = mask.size(3);
  const at::Tensor grouped = group_mask(mask, q_len, k_len, heads / kv_heads);
  // What the fused kernel makes of a boolean mask itself: 0 where allowed, -inf elsewhere.
  return at::zeros(grouped.sizes(), grouped.options().dtype(dtype))
      .masked_fill(grouped.logical_not(), -std::numeric_limits<double>::infinity());
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& mask, const AttentionParams& params, AttentionBackend backend,
                     const at::Tensor& bias) {
#if GPUJOB_HAVE_FUSED_ATTENTION
  if (takes_fused_path(params, backend)) {
    if (!mask.defined()) {
      // Causal without a mask tensor. Folding query heads into rows (below) would break the
      // causal order. From libtorch 2.5 the kernel reads each kv head for its group of query
      // heads itself (enable_gqa); before, keys and values are repeated per query head.
      const int64_t n_rep = q.size(1) / k.size(1);
#if GPUJOB_HAVE_GQA_ATTENTION
      if (n_rep > 1) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, true, params.scale, true);
#endif
      const auto repeat = [&](const at::Tensor& t) {
        if (n_rep == 1) return t;
        return t.unsqueeze(2).expand({t.size(0), t.size(1), n_rep, t.size(2), t.size(3)})
            .reshape({t.size(0), t.size(1) * n_rep, t.size(2), t.size(3)});
      };
      return at::scaled_dot_product_attention(q, repeat(k), repeat(v), {}, 0.0, true, params.scale);
    }
    // A bias prepared once per forward (fused_attention_bias) saves grouping and converting the
    // mask again in every layer.
    const Grouped g = group_queries(q, k, bias.defined() ? at::Tensor() : mask);
    return ungroup(at::scaled_dot_product_attention(g.q, k, v, bias.defined() ? bias : g.mask, 0.0, false,
                                                    params.scale), q);
  }
#else
  (void)backend;
  (void)bias;
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
