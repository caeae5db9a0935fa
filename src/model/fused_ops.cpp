#include "gpujob/model/fused_ops.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "gpujob/util/error.hpp"

#if defined(GPUJOB_WITH_CUDA) && defined(GPUJOB_WITH_FUSED_KERNELS)
#include <ATen/cuda/CUDAContext.h>
#include <cublas_v2.h>

#include "fused_kernels.cuh"
#include "decode_attention.cuh"
#include "matrix_vector.cuh"
#define GPUJOB_FUSED 1
#else
#define GPUJOB_FUSED 0
#endif

namespace gpujob::model {

bool fused_ops_built() { return GPUJOB_FUSED != 0; }

bool fused_ops_apply(const at::Tensor& x) {
  if (!fused_ops_built() || !x.defined() || !x.is_cuda()) return false;
  const auto t = x.scalar_type();
  return t == at::kFloat || t == at::kBFloat16 || t == at::kHalf;
}

#if GPUJOB_FUSED
namespace {

kernels::ElementType element_type(const at::Tensor& x) {
  switch (x.scalar_type()) {
    case at::kFloat: return kernels::ElementType::kFloat32;
    case at::kBFloat16: return kernels::ElementType::kBFloat16;
    case at::kHalf: return kernels::ElementType::kFloat16;
    default: fail("fused ops: dtype ", x.scalar_type(), " is not float32, bfloat16 or float16");
  }
}

void require(const at::Tensor& t, const at::Tensor& like, const char* what, bool contiguous = true) {
  GPUJOB_CHECK(t.is_cuda() && (!contiguous || t.is_contiguous()) && t.scalar_type() == like.scalar_type() &&
                   t.device() == like.device(),
               "fused ops: ", what, " must be a ", contiguous ? "contiguous " : "", "CUDA tensor of ", like.scalar_type(),
               " on ", like.device());
}

// An index table a kernel reads on the device: contiguous int64 [n] on CUDA.
void require_index(const at::Tensor& t, int64_t n, const char* op, const char* what) {
  GPUJOB_CHECK(t.is_cuda() && t.scalar_type() == at::kLong && t.is_contiguous() && t.numel() == n, op, ": ", what,
               " must be int64 [", n, "] on the device");
}

// An uninitialised tensor shaped as `like` but with `last` elements in its last dimension.
at::Tensor empty_with_last(const at::Tensor& like, int64_t last) {
  std::vector<int64_t> sizes(like.sizes().begin(), like.sizes().end());
  sizes.back() = last;
  return at::empty(sizes, like.options());
}

// The operand check of the matrix-vector kernels: fused_linear_apply(x, w), or a one-line error.
void require_matrix_vector(const at::Tensor& x, const at::Tensor& w, const char* op, const char* w_name) {
  GPUJOB_CHECK(fused_linear_apply(x, w), op, ": x ", x.sizes(), " (", x.scalar_type(), ") and ", w_name, " ", w.sizes(),
               " are not operands of the matrix-vector kernel (one contiguous row, 16-byte rows, one CUDA dtype)");
}

// The optional bias of a layer with out_features outputs: a CUDA tensor of x's dtype, one per output.
void require_bias(const at::Tensor& bias, const at::Tensor& x, int64_t out_features, const char* op) {
  if (!bias.defined()) return;
  require(bias, x, "the bias");
  GPUJOB_CHECK(bias.numel() == out_features, op, ": bias has ", bias.numel(), " elements for ", out_features,
               " outputs");
}

// The width of a stacked gate/up weight [2 * width, in] (gate rows first), or a one-line error.
int64_t stacked_width(const at::Tensor& gate_up, const char* op) {
  const int64_t width = gate_up.size(0) / 2;
  GPUJOB_CHECK(gate_up.size(0) == 2 * width, op, ": stacked gate/up weight has ", gate_up.size(0),
               " rows, not an even count");
  return width;
}

// Whether dims [0, last] of t merge into one dimension (each stride the next one's extent).
bool mergeable(const at::Tensor& t, int64_t last) {
  for (int64_t i = 0; i < last; ++i) {
    if (t.size(i) != 1 && t.stride(i) != t.stride(i + 1) * t.size(i + 1)) return false;
  }
  return true;
}

}  // namespace

at::Tensor fused_rms_norm(const at::Tensor& x_in, const at::Tensor& weight, double eps, double offset) {
  require(x_in, x_in, "x", /*contiguous=*/false);
  require(weight, x_in, "the norm weight");
  const int64_t hidden = x_in.size(-1), rows = x_in.numel() / hidden, dims = x_in.dim();
  GPUJOB_CHECK(weight.numel() == hidden, "fused rms_norm: weight has ", weight.numel(), " elements for rows of ", hidden);
  // Rows in groups: adjacent rows of one group (the last-but-one dimension), groups a fixed
  // stride apart (every dimension before it merged), e.g. q's heads inside a stacked q/k/v row.
  at::Tensor x = x_in;
  int64_t rows_per_group = rows, group_stride = rows * hidden;
  if (!x.is_contiguous()) {
    if (dims >= 3 && x.stride(-1) == 1 && x.stride(-2) == hidden && mergeable(x, dims - 3)) {
      rows_per_group = x.size(-2);
      group_stride = x.stride(-3);
    } else {
      x = x.contiguous();
    }
  }
  at::Tensor out = at::empty(x.sizes(), x.options());
  kernels::rms_norm(element_type(x), x.data_ptr(), weight.data_ptr(), out.data_ptr(), rows, hidden, rows_per_group,
                    group_stride, static_cast<float>(eps), static_cast<float>(offset), at::cuda::getCurrentCUDAStream());
  return out;
}

at::Tensor fused_gated_activation(const at::Tensor& gate_up, bool gelu_tanh) {
  require(gate_up, gate_up, "gate_up");
  const int64_t width = gate_up.size(-1) / 2;
  GPUJOB_CHECK(gate_up.size(-1) == 2 * width, "fused gated activation: stacked width ", gate_up.size(-1), " is odd");
  at::Tensor out = empty_with_last(gate_up, width);
  const auto* base = static_cast<const char*>(gate_up.data_ptr());
  kernels::gated_activation(element_type(gate_up), base, base + width * gate_up.element_size(), out.data_ptr(),
                            gate_up.numel() / (2 * width), width, 2 * width, gelu_tanh, at::cuda::getCurrentCUDAStream());
  return out;
}

at::Tensor fused_rope(const at::Tensor& x_in, const at::Tensor& cos, const at::Tensor& sin) {
  require(x_in, x_in, "x", /*contiguous=*/false);
  // Tokens may be a fixed stride apart (a column block of a stacked q/k/v output); within a token
  // the heads and their elements must be adjacent.
  const bool strided_ok = x_in.dim() == 4 && x_in.stride(3) == 1 && x_in.stride(2) == x_in.size(3) &&
                          (x_in.size(0) == 1 || x_in.stride(0) == x_in.stride(1) * x_in.size(1));
  const at::Tensor x = strided_ok ? x_in : x_in.contiguous();
  const int64_t token_stride = x.stride(1);
  require(cos, x, "cos");
  require(sin, x, "sin");
  GPUJOB_CHECK(x.dim() == 4 && cos.dim() == 3 && cos.sizes() == sin.sizes() && cos.size(0) == x.size(0) &&
                   cos.size(1) == x.size(1) && cos.size(2) == x.size(3) && x.size(3) % 2 == 0,
               "fused rope: x ", x.sizes(), " must be [batch, tokens, heads, dim] and cos, sin [batch, tokens, dim], found ",
               cos.sizes(), " and ", sin.sizes());
  at::Tensor out = at::empty(x.sizes(), x.options());
  kernels::rope(element_type(x), x.data_ptr(), cos.data_ptr(), sin.data_ptr(), out.data_ptr(), x.size(0) * x.size(1),
                x.size(2), x.size(3), token_stride, at::cuda::getCurrentCUDAStream());
  return out;
}

std::pair<at::Tensor, at::Tensor> fused_add_rms_norm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& weight,
                                                     double eps, double offset) {
  require(a, a, "a");
  require(b, a, "b");
  require(weight, a, "the norm weight");
  GPUJOB_CHECK(a.sizes() == b.sizes(), "fused add + rms_norm: shapes ", a.sizes(), " and ", b.sizes(), " differ");
  const int64_t hidden = a.size(-1);
  GPUJOB_CHECK(weight.numel() == hidden, "fused add + rms_norm: weight has ", weight.numel(), " elements for rows of ",
               hidden);
  at::Tensor sum = at::empty(a.sizes(), a.options()), out = at::empty(a.sizes(), a.options());
  kernels::add_rms_norm(element_type(a), a.data_ptr(), b.data_ptr(), weight.data_ptr(), sum.data_ptr(),
                        out.data_ptr(), a.numel() / hidden, hidden, static_cast<float>(eps),
                        static_cast<float>(offset), at::cuda::getCurrentCUDAStream());
  return {sum, out};
}

namespace {

constexpr int64_t kSplitLinearMaxRows = 32;

// What the linear kernels (split_linear, the matrix-vector ones) need of x and w alike: CUDA
// tensors of one fused-ops dtype on one device, both contiguous, w [out, in] and x [..., in].
bool linear_operands(const at::Tensor& x, const at::Tensor& w) {
  return fused_ops_apply(x) && w.is_cuda() && w.scalar_type() == x.scalar_type() && w.device() == x.device() &&
         w.dim() == 2 && w.is_contiguous() && x.is_contiguous() && x.dim() >= 1 && x.size(-1) == w.size(1);
}

cudaDataType_t cuda_data_type(const at::Tensor& x) {
  switch (x.scalar_type()) {
    case at::kFloat: return CUDA_R_32F;
    case at::kBFloat16: return CUDA_R_16BF;
    case at::kHalf: return CUDA_R_16F;
    default: fail("split linear: dtype ", x.scalar_type(), " is not float32, bfloat16 or float16");
  }
}

}  // namespace

bool split_linear_apply(const at::Tensor& x, const at::Tensor& w) {
  if (!linear_operands(x, w)) return false;
  const int64_t in = w.size(1), rows = x.numel() / std::max<int64_t>(in, 1);
  const int64_t per_vector = 16 / x.element_size();
  return rows >= 2 && rows <= kSplitLinearMaxRows && in % (kernels::kLinearSplits * per_vector) == 0 &&
         w.size(0) % 4 == 0 && reinterpret_cast<std::uintptr_t>(x.data_ptr()) % 16 == 0 &&
         reinterpret_cast<std::uintptr_t>(w.data_ptr()) % 16 == 0;
}

at::Tensor split_linear(const at::Tensor& x, const at::Tensor& w) {
  GPUJOB_CHECK(split_linear_apply(x, w), "split linear: x ", x.sizes(), " (", x.scalar_type(), ") and w ", w.sizes(),
               " are not operands of the split GEMM (2 to ", kSplitLinearMaxRows,
               " contiguous rows, inputs in whole 16-byte vectors per slice, one CUDA dtype)");
  const int64_t in = w.size(1), out_features = w.size(0), rows = x.numel() / in;
  const int64_t k = in / kernels::kLinearSplits;
  std::vector<int64_t> sizes = {kernels::kLinearSplits};
  sizes.insert(sizes.end(), x.sizes().begin(), x.sizes().end());
  sizes.back() = out_features;
  at::Tensor parts = at::empty(sizes, x.options().dtype(at::kFloat));
  // Column-major terms: parts[s]^T [out, rows] = W[:, slice s] (stored [in, out], transposed) times
  // x[:, slice s]^T ([in, rows]); slice s of W and of x starts s * k elements into their rows.
  const float one = 1.0f, zero = 0.0f;
  const cudaDataType_t type = cuda_data_type(x);
  const cublasStatus_t status = cublasGemmStridedBatchedEx(
      at::cuda::getCurrentCUDABlasHandle(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out_features),
      static_cast<int>(rows), static_cast<int>(k), &one, w.data_ptr(), type, static_cast<int>(in), k, x.data_ptr(), type,
      static_cast<int>(in), k, &zero, parts.data_ptr(), CUDA_R_32F, static_cast<int>(out_features), rows * out_features,
      static_cast<int>(kernels::kLinearSplits), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  GPUJOB_CHECK(status == CUBLAS_STATUS_SUCCESS, "split linear: cuBLAS failed with status ", static_cast<int>(status),
               " for w ", w.sizes(), " and ", rows, " rows");
  return parts;
}

bool fused_add_partials_rms_norm_apply(const at::Tensor& a, const at::Tensor& parts) {
  if (!fused_ops_apply(a) || !a.is_contiguous() || a.dim() < 1 || !parts.defined() || !parts.is_cuda() ||
      parts.device() != a.device() || parts.scalar_type() != at::kFloat || !parts.is_contiguous() ||
      parts.dim() != a.dim() + 1 || parts.size(0) != kernels::kLinearSplits || parts.sizes().slice(1) != a.sizes())
    return false;
  return kernels::add_partials_rms_norm_support(a.size(-1), a.element_size(), {a.data_ptr(), parts.data_ptr()});
}

std::pair<at::Tensor, at::Tensor> fused_add_partials_rms_norm(const at::Tensor& a, const at::Tensor& parts,
                                                              const at::Tensor& weight, double eps, double offset) {
  GPUJOB_CHECK(fused_add_partials_rms_norm_apply(a, parts), "fused add of partial sums + rms_norm: a ", a.sizes(),
               " (", a.scalar_type(), ") and parts ", parts.sizes(), " (", parts.scalar_type(),
               ") are not a contiguous CUDA row block and its ", kernels::kLinearSplits, " float32 partial sums");
  require(weight, a, "the norm weight");
  const int64_t hidden = a.size(-1);
  GPUJOB_CHECK(weight.numel() == hidden, "fused add of partial sums + rms_norm: weight has ", weight.numel(),
               " elements for rows of ", hidden);
  at::Tensor sum = at::empty(a.sizes(), a.options()), out = at::empty(a.sizes(), a.options());
  kernels::add_partials_rms_norm(element_type(a), a.data_ptr(), parts.data_ptr<float>(), weight.data_ptr(),
                                 sum.data_ptr(), out.data_ptr(), a.numel() / hidden, hidden, static_cast<float>(eps),
                                 static_cast<float>(offset), at::cuda::getCurrentCUDAStream());
  return {sum, out};
}

bool fused_linear_apply(const at::Tensor& x, const at::Tensor& w) {
  if (!linear_operands(x, w) || x.numel() != x.size(-1)) return false;
  return kernels::matrix_vector_support(w.size(1), x.element_size(), x.data_ptr(), w.data_ptr());
}

at::Tensor fused_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  require_matrix_vector(x, w, "fused linear", "w");
  const int64_t in = w.size(1), out_features = w.size(0);
  require_bias(bias, x, out_features, "fused linear");
  at::Tensor out = empty_with_last(x, out_features);
  kernels::matrix_vector(element_type(x), x.data_ptr(), w.data_ptr(), bias.defined() ? bias.data_ptr() : nullptr,
                         out.data_ptr(), out_features, in, at::cuda::getCurrentCUDAStream());
  return out;
}

at::Tensor fused_gated_linear(const at::Tensor& x, const at::Tensor& gate_up, bool gelu_tanh) {
  require_matrix_vector(x, gate_up, "fused gated linear", "gate_up");
  const int64_t width = stacked_width(gate_up, "fused gated linear");
  at::Tensor out = empty_with_last(x, width);
  kernels::gated_matrix_vector(element_type(x), x.data_ptr(), gate_up.data_ptr(), out.data_ptr(), width,
                               gate_up.size(1), gelu_tanh, at::cuda::getCurrentCUDAStream());
  return out;
}

ResidualRow fused_linear_add(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                             const at::Tensor& residual) {
  require_matrix_vector(x, w, "fused linear + residual", "w");
  require(residual, x, "the residual");
  const int64_t out_features = w.size(0);
  require_bias(bias, x, out_features, "fused linear + residual");
  GPUJOB_CHECK(residual.numel() == out_features, "fused linear + residual: the residual has ", residual.numel(),
               " elements for ", out_features, " outputs");
  ResidualRow out;
  out.h = empty_with_last(x, out_features);
  out.squares = at::empty({kernels::matrix_vector_blocks(out_features)}, x.options().dtype(at::kFloat));
  kernels::matrix_vector_add(element_type(x), x.data_ptr(), w.data_ptr(), bias.defined() ? bias.data_ptr() : nullptr,
                             residual.data_ptr(), out.h.data_ptr(), out.squares.data_ptr<float>(), out_features,
                             w.size(1), at::cuda::getCurrentCUDAStream());
  return out;
}

bool fused_normed_linear_apply(const at::Tensor& h, const at::Tensor& norm_weight, const at::Tensor& w) {
  return fused_linear_apply(h, w) && norm_weight.defined() && norm_weight.is_cuda() &&
         norm_weight.device() == h.device() && norm_weight.scalar_type() == h.scalar_type() &&
         norm_weight.is_contiguous() && norm_weight.numel() == w.size(1) &&
         kernels::normed_matrix_vector_support(w.size(1), h.element_size(), h.data_ptr(), norm_weight.data_ptr(),
                                               w.data_ptr());
}

namespace {

// The NormedInput of a ResidualRow, after the checks the normed kernels need.
kernels::NormedInput normed_input(const ResidualRow& row, const at::Tensor& norm_weight, double eps, double offset,
                                  const at::Tensor& w, const char* op) {
  GPUJOB_CHECK(norm_weight.defined() && norm_weight.numel() == w.size(1), op, ": the norm weight has ",
               norm_weight.defined() ? norm_weight.numel() : 0, " elements for rows of ", w.size(1));
  GPUJOB_CHECK(fused_normed_linear_apply(row.h, norm_weight, w), op, ": h ", row.h.sizes(), " (", row.h.scalar_type(),
               "), its norm weight and w ", w.sizes(), " are not operands of the normed matrix-vector kernel (one "
               "contiguous row of at most 48 KiB, 16-byte rows, one CUDA dtype, aligned)");
  GPUJOB_CHECK(row.squares.is_cuda() && row.squares.scalar_type() == at::kFloat && row.squares.is_contiguous() &&
                   row.squares.dim() == 1 && row.squares.device() == row.h.device(),
               op, ": the sums of squares must be float32 [n] on ", row.h.device());
  kernels::NormedInput in;
  in.h = row.h.data_ptr();
  in.squares = row.squares.data_ptr<float>();
  in.n_squares = row.squares.numel();
  in.weight = norm_weight.data_ptr();
  in.eps = static_cast<float>(eps);
  in.offset = static_cast<float>(offset);
  return in;
}

}  // namespace

at::Tensor fused_normed_linear(const ResidualRow& row, const at::Tensor& norm_weight, double eps, double offset,
                               const at::Tensor& w, const at::Tensor& bias) {
  const kernels::NormedInput in = normed_input(row, norm_weight, eps, offset, w, "fused normed linear");
  const int64_t out_features = w.size(0);
  require_bias(bias, row.h, out_features, "fused normed linear");
  at::Tensor out = empty_with_last(row.h, out_features);
  kernels::normed_matrix_vector(element_type(row.h), in, w.data_ptr(), bias.defined() ? bias.data_ptr() : nullptr,
                                out.data_ptr(), out_features, w.size(1), at::cuda::getCurrentCUDAStream());
  return out;
}

at::Tensor fused_normed_gated_linear(const ResidualRow& row, const at::Tensor& norm_weight, double eps, double offset,
                                     const at::Tensor& gate_up, bool gelu_tanh) {
  const kernels::NormedInput in = normed_input(row, norm_weight, eps, offset, gate_up, "fused normed gated linear");
  const int64_t width = stacked_width(gate_up, "fused normed gated linear");
  at::Tensor out = empty_with_last(row.h, width);
  kernels::normed_gated_matrix_vector(element_type(row.h), in, gate_up.data_ptr(), out.data_ptr(), width,
                                      gate_up.size(1), gelu_tanh, at::cuda::getCurrentCUDAStream());
  return out;
}

bool fused_attention_inputs_apply(const at::Tensor& qkv, int64_t head_dim) {
  return fused_ops_apply(qkv) && qkv.is_contiguous() && kernels::attention_inputs_support(head_dim);
}

std::pair<at::Tensor, at::Tensor> fused_attention_inputs(const at::Tensor& qkv, int64_t heads, int64_t kv_heads,
                                                         int64_t head_dim, const at::Tensor& q_norm,
                                                         const at::Tensor& k_norm, double eps, double offset,
                                                         const at::Tensor& cos, const at::Tensor& sin,
                                                         const KvCacheRows* cache) {
  GPUJOB_CHECK(fused_attention_inputs_apply(qkv, head_dim), "fused attention inputs: qkv ", qkv.sizes(),
               " must be a contiguous CUDA tensor and head_dim ", head_dim, " 64, 128 or 256");
  GPUJOB_CHECK(qkv.dim() == 3 && qkv.size(2) == (heads + 2 * kv_heads) * head_dim,
               "fused attention inputs: qkv ", qkv.sizes(), " is not [batch, tokens, (", heads, " + 2 * ", kv_heads,
               ") * ", head_dim, "]");
  const int64_t B = qkv.size(0), T = qkv.size(1);
  require(cos, qkv, "cos");
  require(sin, qkv, "sin");
  GPUJOB_CHECK(cos.numel() == B * T * head_dim && sin.numel() == cos.numel(), "fused attention inputs: cos ",
               cos.sizes(), " and sin ", sin.sizes(), " are not [", B, ", ", T, ", ", head_dim, "]");
  if (q_norm.defined()) require(q_norm, qkv, "q_norm");
  if (k_norm.defined()) require(k_norm, qkv, "k_norm");
  kernels::AttentionInputs in;
  in.qkv = qkv.data_ptr();
  in.tokens = B * T;
  in.heads = heads;
  in.kv_heads = kv_heads;
  in.dim = head_dim;
  in.token_stride = qkv.size(2);
  in.q_norm = q_norm.defined() ? q_norm.data_ptr() : nullptr;
  in.k_norm = k_norm.defined() ? k_norm.data_ptr() : nullptr;
  in.eps = static_cast<float>(eps);
  in.offset = static_cast<float>(offset);
  in.cos = cos.data_ptr();
  in.sin = sin.data_ptr();
  at::Tensor q = at::empty({B, T, heads, head_dim}, qkv.options()), k;
  in.q_out = q.data_ptr();
  if (cache != nullptr) {
    require(cache->keys, qkv, "the key cache");
    require(cache->values, qkv, "the value cache");
    require_index(cache->rows, B * T, "fused attention inputs", "cache rows");
    in.cache_rows = cache->rows.data_ptr<int64_t>();
    in.k_cache = cache->keys.data_ptr();
    in.v_cache = cache->values.data_ptr();
  } else {
    k = at::empty({B, T, kv_heads, head_dim}, qkv.options());
    in.k_out = k.data_ptr();
  }
  kernels::attention_inputs(element_type(qkv), in, at::cuda::getCurrentCUDAStream());
  return {q, k};
}

bool fused_decode_attention_apply(const at::Tensor& q, int64_t kv_heads) {
  return fused_ops_apply(q) && q.dim() == 3 && q.is_contiguous() &&
         kernels::decode_attention_support(q.size(2), q.size(1), kv_heads);
}

at::Tensor fused_decode_attention(const DecodeAttentionRequest& r) {
  const at::Tensor& q = r.q;
  GPUJOB_CHECK(r.keys.dim() == 4 && r.values.sizes() == r.keys.sizes() && fused_decode_attention_apply(q, r.keys.size(2)),
               "fused decode attention: q ", q.sizes(), " and cache ", r.keys.sizes(),
               " are not [batch, heads, head_dim] and [slots, max_len, kv_heads, head_dim] of a supported size");
  require(r.keys, q, "the key cache");
  require(r.values, q, "the value cache");
  const int64_t batch = q.size(0);
  require_index(r.positions, batch, "fused decode attention", "positions");
  if (r.slots.defined()) require_index(r.slots, batch, "fused decode attention", "slots");
  GPUJOB_CHECK(r.key_len >= 1 && r.key_len <= r.keys.size(1), "fused decode attention: key_len ", r.key_len,
               " is outside [1, ", r.keys.size(1), "]");
  kernels::DecodeAttention a;
  a.q = q.data_ptr();
  a.k_cache = r.keys.data_ptr();
  a.v_cache = r.values.data_ptr();
  a.slots = r.slots.defined() ? r.slots.data_ptr<int64_t>() : nullptr;
  a.first_slot = r.first_slot;
  a.positions = r.positions.data_ptr<int64_t>();
  a.batch = batch;
  a.heads = q.size(1);
  a.kv_heads = r.keys.size(2);
  a.dim = q.size(2);
  a.max_len = r.keys.size(1);
  a.key_len = r.key_len;
  a.window = r.window;
  a.scale = static_cast<float>(r.scale);
  a.softcap = static_cast<float>(r.softcap);
  a.splits = r.splits;
  at::Tensor out = at::empty(q.sizes(), q.options());
  at::Tensor workspace = at::empty({kernels::decode_attention_workspace(element_type(q), a)}, q.options().dtype(at::kFloat));
  a.out = out.data_ptr();
  a.workspace = workspace.data_ptr<float>();
  kernels::decode_attention(element_type(q), a, at::cuda::getCurrentCUDAStream());
  return out;
}

#else

bool split_linear_apply(const at::Tensor&, const at::Tensor&) { return false; }
at::Tensor split_linear(const at::Tensor&, const at::Tensor&) { fail("fused ops are built only with a CUDA libtorch"); }
bool fused_add_partials_rms_norm_apply(const at::Tensor&, const at::Tensor&) { return false; }
std::pair<at::Tensor, at::Tensor> fused_add_partials_rms_norm(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                              double, double) {
  fail("fused ops are built only with a CUDA libtorch");
}

bool fused_decode_attention_apply(const at::Tensor&, int64_t) { return false; }
at::Tensor fused_decode_attention(const DecodeAttentionRequest&) {
  fail("fused ops are built only with a CUDA libtorch");
}

std::pair<at::Tensor, at::Tensor> fused_add_rms_norm(const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                                                     double) {
  fail("fused ops are built only with a CUDA libtorch");
}
bool fused_linear_apply(const at::Tensor&, const at::Tensor&) { return false; }
at::Tensor fused_linear(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  fail("fused ops are built only with a CUDA libtorch");
}
at::Tensor fused_gated_linear(const at::Tensor&, const at::Tensor&, bool) {
  fail("fused ops are built only with a CUDA libtorch");
}
ResidualRow fused_linear_add(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  fail("fused ops are built only with a CUDA libtorch");
}
bool fused_normed_linear_apply(const at::Tensor&, const at::Tensor&, const at::Tensor&) { return false; }
at::Tensor fused_normed_linear(const ResidualRow&, const at::Tensor&, double, double, const at::Tensor&,
                               const at::Tensor&) {
  fail("fused ops are built only with a CUDA libtorch");
}
at::Tensor fused_normed_gated_linear(const ResidualRow&, const at::Tensor&, double, double, const at::Tensor&, bool) {
  fail("fused ops are built only with a CUDA libtorch");
}
bool fused_attention_inputs_apply(const at::Tensor&, int64_t) { return false; }
std::pair<at::Tensor, at::Tensor> fused_attention_inputs(const at::Tensor&, int64_t, int64_t, int64_t,
                                                         const at::Tensor&, const at::Tensor&, double, double,
                                                         const at::Tensor&, const at::Tensor&, const KvCacheRows*) {
  fail("fused ops are built only with a CUDA libtorch");
}

at::Tensor fused_rms_norm(const at::Tensor&, const at::Tensor&, double, double) {
  fail("fused ops are built only with a CUDA libtorch");
}
at::Tensor fused_gated_activation(const at::Tensor&, bool) {
  fail("fused ops are built only with a CUDA libtorch");
}
at::Tensor fused_rope(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  fail("fused ops are built only with a CUDA libtorch");
}

#endif

}  // namespace gpujob::model
