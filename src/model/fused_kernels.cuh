// Launchers of the fused element-wise CUDA kernels (fused_kernels.cu). Plain pointers and sizes:
// the .cu file includes no libtorch header, so nvcc never parses libtorch.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace gpujob::model::kernels {

enum class ElementType { kFloat32, kBFloat16, kFloat16 };

// out[r, :] = RMSNorm(x[r, :]) for `rows` rows of `hidden` elements: float32 sum of squares,
// normed = x * rsqrt(mean + eps); offset == 0: out = w * round(normed) (Llama, Qwen), else
// out = round(normed * (w + offset)) (Gemma's 1 + w), rounding to the element type as HF does.
void rms_norm(ElementType type, const void* x, const void* weight, void* out, int64_t rows, int64_t hidden,
              float eps, float offset, cudaStream_t stream);

// out = round(act(gate)) * up, rounded: act is SiLU, or GELU with the tanh approximation.
void gated_activation(ElementType type, const void* gate, const void* up, void* out, int64_t n, bool gelu_tanh,
                      cudaStream_t stream);

// Rotary embedding of x laid out [batch, tokens, heads, dim] with tables cos, sin [batch, tokens, dim]:
// out = round(round(x * cos) + round(rotate_half(x) * sin)), rotate_half(x) = cat(-x2, x1).
void rope(ElementType type, const void* x, const void* cos, const void* sin, void* out, int64_t batch_tokens,
          int64_t heads, int64_t dim, cudaStream_t stream);

}  // namespace gpujob::model::kernels
