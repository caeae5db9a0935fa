// Fused element-wise operations of the decoder on CUDA: one kernel where ATen runs several, with
// the same float32 math and the same roundings to the model dtype as the unfused expressions
// (Decoder::rms_norm, the gated activation of the MLP, apply_rope), so results equal them up to
// the order of a float32 sum. Built only with a CUDA libtorch (the kernels are in fused_kernels.cu).
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

namespace gpujob::model {

// True in a CUDA build, where the functions below exist; they take CUDA tensors only.
bool fused_ops_built();

// Whether a tensor can take the fused path: a CUDA build, a CUDA tensor, float32/bfloat16/float16.
bool fused_ops_apply(const at::Tensor& x);

// RMSNorm over the last dimension of x; weight [hidden] of x's dtype. offset 0: w * round(normed)
// (Llama, Qwen); otherwise round(normed * (w + offset)) (Gemma, offset 1). x may be a column block
// of a wider tensor (q of a stacked q/k/v output) and is read in place; the result is contiguous.
at::Tensor fused_rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, double offset);

// round(act(gate)) * up over the output of the stacked gate/up GEMM, gate_up [..., 2 * width]
// (contiguous, gate first): SiLU, or GELU (tanh approximation). Returns [..., width].
at::Tensor fused_gated_activation(const at::Tensor& gate_up, bool gelu_tanh);

// Rotary embedding of x [batch, tokens, heads, dim] with cos, sin [batch, tokens, dim] (contiguous):
// x * cos + rotate_half(x) * sin, each product rounded as ATen rounds it. x may be a column block
// of a wider tensor (read in place); the result is contiguous [batch, tokens, heads, dim].
at::Tensor fused_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// round(a + b) and RMSNorm of it (as fused_rms_norm) in one pass over a and b, both contiguous of
// one shape: the residual addition of a block and the norm that follows it. Returns {sum, normed}.
std::pair<at::Tensor, at::Tensor> fused_add_rms_norm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& weight,
                                                     double eps, double offset);

// A linear layer of a few rows (2 to 32: a decode step of that many sequences) cut along its inputs
// into slices, with no reduction at its end: y = at::linear(x, w) is the sum of the returned float32
// partial sums [splits, ...x's shape but the last, out] (one strided-batched cuBLAS GEMM, one slice
// each), and fused_add_partials_rms_norm adds them up inside the residual addition that follows the
// o and down layers. At these rows cuBLAS splits such layers itself and runs a reduction kernel
// after them; this way that kernel's work moves into the norm (BENCHMARKS.md).
// split_linear_apply: CUDA tensors of one dtype (float32, bfloat16, float16), x and w [out, in]
// contiguous, 2 to 32 rows, `in` a whole number of 16-byte vectors per slice, `out` of 16 bytes.
bool split_linear_apply(const at::Tensor& x, const at::Tensor& w);
at::Tensor split_linear(const at::Tensor& x, const at::Tensor& w);

// {round(a + round(sum over s of parts[s])), RMSNorm of that} as fused_add_rms_norm computes it with
// b = the rounded sum: the residual addition of a split_linear output and the norm after it, one
// kernel. fused_add_partials_rms_norm_apply: a contiguous a (CUDA, a fused_ops dtype) whose rows
// one block holds (whole 16-byte vectors) and parts as split_linear returns them for it.
bool fused_add_partials_rms_norm_apply(const at::Tensor& a, const at::Tensor& parts);
std::pair<at::Tensor, at::Tensor> fused_add_partials_rms_norm(const at::Tensor& a, const at::Tensor& parts,
                                                              const at::Tensor& weight, double eps, double offset);

// Whether fused_linear takes x and w: CUDA tensors of one dtype, x a single contiguous row (every
// dimension but the last of size 1), w contiguous [out, in], the row length a multiple of 16
// bytes. From two rows on a GEMM library is the better kernel (bench/linear_bench.cpp).
bool fused_linear_apply(const at::Tensor& x, const at::Tensor& w);

// at::linear(x, w, bias) for the one row of a one-sequence decode step: a matrix-vector kernel
// that streams each weight once, float32 sums rounded once. Only where fused_linear_apply holds.
at::Tensor fused_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias);

// The first half of a gated MLP for the one row of a one-sequence decode step: round(act(g)) * u
// with g, u = at::linear(x, gate_up) split in half (gate_up [2 * width, in], gate rows first), as
// fused_gated_activation computes it from that output, but in one kernel that reads both weight
// rows of each output. Only where fused_linear_apply(x, gate_up) holds. Returns [..., width].
at::Tensor fused_gated_linear(const at::Tensor& x, const at::Tensor& gate_up, bool gelu_tanh);

// The residual stream of one row after a layer that added its output to it (fused_linear_add), with
// what the next RMSNorm needs so that it can run inside the next layer's kernel: float32 sums of
// squares of h over consecutive blocks of features (their total is the row's sum of squares).
struct ResidualRow {
  at::Tensor h, squares;
};

// residual + at::linear(x, w, bias) for one row, both rounded to the dtype as the two ops round
// them, and the sums of squares of the result: the o and down projections of a one-sequence decode
// step with their residual additions. Where fused_linear_apply(x, w) holds; residual contiguous,
// of the output's shape and x's dtype.
ResidualRow fused_linear_add(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                             const at::Tensor& residual);

// Whether the normed kernels below take row h, the norm weight and the layer weight w:
// fused_linear_apply(h, w), a contiguous norm weight of h's dtype and device with a weight per
// element of the row, and the row fits one block's shared memory (48 KiB).
bool fused_normed_linear_apply(const at::Tensor& h, const at::Tensor& norm_weight, const at::Tensor& w);

// at::linear(RMSNorm(row.h), w, bias) and fused_gated_linear(RMSNorm(row.h), gate_up, gelu_tanh) with
// the norm (norm_weight, eps, offset as in fused_rms_norm) inside the matrix-vector kernel, its sum
// of squares taken from row.squares: the q/k/v and gate/up layers of a one-sequence decode step
// without a norm kernel before them. Where fused_normed_linear_apply(row.h, norm_weight, w) holds.
at::Tensor fused_normed_linear(const ResidualRow& row, const at::Tensor& norm_weight, double eps, double offset,
                               const at::Tensor& w, const at::Tensor& bias);
at::Tensor fused_normed_gated_linear(const ResidualRow& row, const at::Tensor& norm_weight, double eps, double offset,
                                     const at::Tensor& gate_up, bool gelu_tanh);

// Where fused_attention_inputs writes k and v: rows of the KV cache tensors (each [..., kv_heads,
// head_dim] contiguous), rows[t] (int64, one per token; negative: skip the token) for token t.
struct KvCacheRows {
  at::Tensor keys, values, rows;
};

// Whether fused_attention_inputs takes heads of this size (64, 128 or 256).
bool fused_attention_inputs_apply(const at::Tensor& qkv, int64_t head_dim);

// From a stacked q/k/v output [batch, tokens, (heads + 2 * kv_heads) * head_dim] (contiguous): q
// and k RMS-normed per head when q_norm / k_norm are defined (weight [head_dim], offset as in
// fused_rms_norm), then rotated with cos, sin [batch, tokens, head_dim]; one kernel for all of it.
// Returns {q [batch, tokens, heads, head_dim], k [batch, tokens, kv_heads, head_dim]}. With
// `cache`, k and the unchanged v go into its rows instead and the returned k is undefined.
std::pair<at::Tensor, at::Tensor> fused_attention_inputs(const at::Tensor& qkv, int64_t heads, int64_t kv_heads,
                                                         int64_t head_dim, const at::Tensor& q_norm,
                                                         const at::Tensor& k_norm, double eps, double offset,
                                                         const at::Tensor& cos, const at::Tensor& sin,
                                                         const KvCacheRows* cache);

// One query token per row against a KV cache (decode): what the cached path of the decoder
// computes with the mask of positions (and a sliding window), without reading keys past each
// row's position. q [batch, heads, head_dim] contiguous; keys, values [slots, max_len, kv_heads,
// head_dim] (KvCache's tensors of one layer); row b reads slot slots[b] (int64 [batch] on the
// device) or, with slots undefined, first_slot + b; positions int64 [batch] on the device, each
// below key_len; window 0 for none. Returns [batch, heads, head_dim].
struct DecodeAttentionRequest {
  at::Tensor q, keys, values, slots, positions;
  int64_t first_slot = 0, key_len = 0, window = 0;
  double scale = 1.0, softcap = 0.0;
  int64_t splits = 0;  // key ranges per row and kv head (at most one per 16 keys); 0: chosen by the kernel
};
bool fused_decode_attention_apply(const at::Tensor& q, int64_t kv_heads);
at::Tensor fused_decode_attention(const DecodeAttentionRequest& request);

}  // namespace gpujob::model
