#include "gpujob/model/fused_ops.hpp"

#include <ATen/ATen.h>

#include <vector>

#include "gpujob/util/error.hpp"

#if defined(GPUJOB_WITH_CUDA) && defined(GPUJOB_WITH_FUSED_KERNELS)
#include <ATen/cuda/CUDAContext.h>

#include "fused_kernels.cuh"
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
  std::vector<int64_t> sizes(gate_up.sizes().begin(), gate_up.sizes().end());
  sizes.back() = width;
  at::Tensor out = at::empty(sizes, gate_up.options());
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

#else

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
