// Launchers of the fused element-wise CUDA kernels (fused_kernels.cu). Plain pointers and sizes:
// the .cu file includes no libtorch header, so nvcc never parses libtorch.
#pragma once

#include <cstdint>

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

}  // namespace gpujob::model::kernels
