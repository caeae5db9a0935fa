// Fused element-wise operations of the decoder on CUDA: one kernel where ATen runs several, with
// the same float32 math and the same roundings to the model dtype as the unfused expressions
// (Decoder::rms_norm, the gated activation of the MLP, apply_rope), so results equal them up to
// the order of a float32 sum. Built only with a CUDA libtorch (the kernels are in fused_kernels.cu).
#pragma once

#include <ATen/core/Tensor.h>

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

}  // namespace gpujob::model
