// Attention without a mask tensor (plain causal) against the explicit masked computation in float64.
#include "gpujob/model/attention.hpp"
#include "gpujob/model/decoder.hpp"

#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::model;

namespace {

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
  return (g - w).abs().max().item<double>() / w.abs().max().item<double>();
}

}  // namespace

TEST_CASE("plain causal attention (no mask tensor) equals the masked computation, with grouped heads") {
  at::manual_seed(7);
  for (const int64_t kv_heads : {1, 2, 4}) {
    const int64_t B = 3, H = 4, T = 9, D = 16;
    const at::Tensor q = at::randn({B, H, T, D}), k = at::randn({B, kv_heads, T, D}), v = at::randn({B, kv_heads, T, D});
    const AttentionParams params{0.25, 0.0};
    // Reference: float64, the explicit computation with the causal mask spelled out.
    const at::Tensor mask = causal_mask(T, q.options());
    CHECK(mask.sizes() == at::IntArrayRef({1, 1, T, T}));
    CHECK(mask.sum().item<int64_t>() == T * (T + 1) / 2);
    const at::Tensor want = attention_explicit(q.to(at::kDouble), k.to(at::kDouble), v.to(at::kDouble), mask, params);
    for (const auto backend : {AttentionBackend::kAuto, AttentionBackend::kFallback}) {
      INFO("kv_heads " << kv_heads << (backend == AttentionBackend::kAuto ? ", fused" : ", explicit"));
      const at::Tensor got = attention(q, k, v, at::Tensor(), params, backend);
      CHECK(got.sizes() == q.sizes());
      CHECK(relative_error(got, want) < 1e-5);
      // And the masked call of the same backend agrees with it.
      CHECK(relative_error(attention(q, k, v, mask, params, backend), want) < 1e-5);
    }
  }
}

TEST_CASE("the first query of causal attention sees only the first key") {
  const at::Tensor q = at::randn({1, 2, 5, 8}), k = at::randn({1, 2, 5, 8}), v = at::randn({1, 2, 5, 8});
  const at::Tensor out = attention(q, k, v, at::Tensor(), {1.0, 0.0}, AttentionBackend::kAuto);
  CHECK(relative_error(out.select(2, 0), v.select(2, 0)) < 1e-6);
}
