// Launchers of the fused element-wise CUDA kernels (fused_kernels.cu). Plain pointers and sizes:
// the .cu file includes no libtorch header, so nvcc never parses libtorch.
#pragma once

#include <cstdint>
#include <initializer_list>

#include <cuda_runtime_api.h>

namespace gpujob::model::kernels {

enum class ElementType { kFloat32, kBFloat16, kFloat16 };

// out[r, :] = RMSNorm(x row r) for `rows` rows of `hidden` elements: float32 sum of squares,
// normed = x * rsqrt(mean + eps); offset == 0: out = w * round(normed) (Llama, Qwen), else
// out = round(normed * (w + offset)) (Gemma's 1 + w), rounding to the element type as HF does.
// Input rows come in groups of rows_per_group adjacent rows, groups group_stride elements apart
// (a column block of a wider tensor, such as q in a stacked q/k/v output); out is contiguous.
void rms_norm(ElementType type, const void* x, const void* weight, void* out, int64_t rows, int64_t hidden,
              int64_t rows_per_group, int64_t group_stride, float eps, float offset, cudaStream_t stream);

// The residual addition and the RMSNorm after it in one pass: sum = round(a + b) and out =
// RMSNorm(sum) as rms_norm computes it, for `rows` contiguous rows of `hidden` elements.
void add_rms_norm(ElementType type, const void* a, const void* b, const void* weight, void* sum, void* out,
                  int64_t rows, int64_t hidden, float eps, float offset, cudaStream_t stream);

// How many slices split_linear (fused_ops.cpp) cuts a few-row linear layer's inputs into: each
// slice's product is a float32 partial sum of the output, and add_partials_rms_norm adds them up.
// Four filled an H200 best for the o and down layers of Qwen3-8B at 16 and 32 rows (BENCHMARKS.md).
constexpr int kLinearSplits = 4;

// add_rms_norm with b given as kLinearSplits float32 partial sums, parts[s * rows * hidden + r *
// hidden + c]: sum = round(a + round(sum of the partials)), out = RMSNorm(sum). Only where
// add_partials_rms_norm_support holds (rows of whole 16-byte vectors, short enough for one block
// to hold in registers, every pointer 16-byte aligned).
bool add_partials_rms_norm_support(int64_t hidden, int64_t element_size, std::initializer_list<const void*> pointers);
void add_partials_rms_norm(ElementType type, const void* a, const float* parts, const void* weight, void* sum,
                           void* out, int64_t rows, int64_t hidden, float eps, float offset, cudaStream_t stream);

// out[r, c] = round(round(act(gate[r, c])) * up[r, c]) for `rows` rows of `width` elements, act
// SiLU or GELU with the tanh approximation. Row r of gate and of up starts at r * row_stride
// (row_stride == width for separate contiguous tensors; 2 * width with up right after gate in
// one stacked row); out is contiguous.
void gated_activation(ElementType type, const void* gate, const void* up, void* out, int64_t rows, int64_t width,
                      int64_t row_stride, bool gelu_tanh, cudaStream_t stream);

// Rotary embedding of x laid out [batch * tokens, heads, dim] (token t starts at t * token_stride,
// its heads adjacent) with tables cos, sin [batch * tokens, dim]: out (contiguous) =
// round(round(x * cos) + round(rotate_half(x) * sin)), rotate_half(x) = cat(-x2, x1).
void rope(ElementType type, const void* x, const void* cos, const void* sin, void* out, int64_t batch_tokens,
          int64_t heads, int64_t dim, int64_t token_stride, cudaStream_t stream);

// Where attention_inputs reads and writes. qkv: a stacked q/k/v output, token t's row starting at
// t * token_stride, holding `heads` q heads, then `kv_heads` k heads, then `kv_heads` v heads of
// `dim` elements. q_norm / k_norm: per-head RMSNorm weights [dim], or null (no q/k norm). cos, sin:
// [tokens, dim]. q_out: [tokens, heads, dim]. Without a cache (cache_rows null), k_out: [tokens,
// kv_heads, dim]; with one, token t's k and v go to row cache_rows[t] of k_cache and v_cache (rows
// of kv_heads * dim elements; a negative row skips the token) and k_out is not written.
struct AttentionInputs {
  const void* qkv = nullptr;
  int64_t tokens = 0, heads = 0, kv_heads = 0, dim = 0, token_stride = 0;
  const void* q_norm = nullptr;
  const void* k_norm = nullptr;
  float eps = 0.f, offset = 0.f;
  const void* cos = nullptr;
  const void* sin = nullptr;
  void* q_out = nullptr;
  void* k_out = nullptr;
  const int64_t* cache_rows = nullptr;
  void* k_cache = nullptr;
  void* v_cache = nullptr;
};

// Whether attention_inputs takes heads of `dim` elements: a multiple of 64 up to 256, so that
// each lane of a warp holds both halves that RoPE pairs.
bool attention_inputs_support(int64_t dim);

// One kernel for what the unfused path does in up to six: the q/k norms, RoPE on q and on k, and
// (with a cache) the writes of k and v into it. Roundings as rms_norm followed by rope.
void attention_inputs(ElementType type, const AttentionInputs& in, cudaStream_t stream);

}  // namespace gpujob::model::kernels
