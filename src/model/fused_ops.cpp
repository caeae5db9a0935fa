#include "gpujob/model/fused_ops.hpp"

#include <ATen/ATen.h>

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

void require(const at::Tensor& t, const at::Tensor& like, const char* what) {
  GPUJOB_CHECK(t.is_cuda() && t.is_contiguous() && t.scalar_type() == like.scalar_type() &&
                   t.device() == like.device(),
               "fused ops: ", what, " must be a contiguous CUDA tensor of ", like.scalar_type(), " on ", like.device());
}

}  // namespace

at::Tensor fused_rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, double offset) {
  require(x, x, "x");
  require(weight, x, "the norm weight");
  const int64_t hidden = x.size(-1);
  GPUJOB_CHECK(weight.numel() == hidden, "fused rms_norm: weight has ", weight.numel(), " elements for rows of ", hidden);
  at::Tensor out = at::empty_like(x);
  kernels::rms_norm(element_type(x), x.data_ptr(), weight.data_ptr(), out.data_ptr(), x.numel() / hidden, hidden,
                    static_cast<float>(eps), static_cast<float>(offset), at::cuda::getCurrentCUDAStream());
  return out;
}

at::Tensor fused_gated_activation(const at::Tensor& gate, const at::Tensor& up, bool gelu_tanh) {
  require(gate, gate, "gate");
  require(up, gate, "up");
  GPUJOB_CHECK(gate.sizes() == up.sizes(), "fused gated activation: gate ", gate.sizes(), " and up ", up.sizes(), " differ");
  at::Tensor out = at::empty_like(gate);
  kernels::gated_activation(element_type(gate), gate.data_ptr(), up.data_ptr(), out.data_ptr(), gate.numel(), gelu_tanh,
                            at::cuda::getCurrentCUDAStream());
  return out;
}

at::Tensor fused_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  require(x, x, "x");
  require(cos, x, "cos");
  require(sin, x, "sin");
  GPUJOB_CHECK(x.dim() == 4 && cos.dim() == 3 && cos.sizes() == sin.sizes() && cos.size(0) == x.size(0) &&
                   cos.size(1) == x.size(1) && cos.size(2) == x.size(3) && x.size(3) % 2 == 0,
               "fused rope: x ", x.sizes(), " must be [batch, tokens, heads, dim] and cos, sin [batch, tokens, dim], found ",
               cos.sizes(), " and ", sin.sizes());
  at::Tensor out = at::empty_like(x);
  kernels::rope(element_type(x), x.data_ptr(), cos.data_ptr(), sin.data_ptr(), out.data_ptr(), x.size(0) * x.size(1),
                x.size(2), x.size(3), at::cuda::getCurrentCUDAStream());
  return out;
}

#else

at::Tensor fused_rms_norm(const at::Tensor&, const at::Tensor&, double, double) {
  fail("fused ops are built only with a CUDA libtorch");
}
at::Tensor fused_gated_activation(const at::Tensor&, const at::Tensor&, bool) {
  fail("fused ops are built only with a CUDA libtorch");
}
at::Tensor fused_rope(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  fail("fused ops are built only with a CUDA libtorch");
}

#endif

}  // namespace gpujob::model
