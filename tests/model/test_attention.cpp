// Attention without a mask tensor (plain causal) against the explicit masked computation in float64
// (on GPUJOB_TEST_DEVICE too, default cpu).
#include "gpujob/model/attention.hpp"
#include "gpujob/model/decoder.hpp"

#include <cstdlib>
#include <string>
#include <vector>

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
    const at::Tensor mask = causal_mask(T, T, q.options());
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

TEST_CASE("causal attention over more keys than queries sees keys 0..i, on the test device too") {
  // A prefill of fresh cache slots reads key_len >= tokens keys (the cache's key-length bucket);
  // the keys past the last query must never count. The fused kernel's is_causal is aligned to the
  // top left here, as the explicit path's mask.
  at::manual_seed(11);
  const char* device_env = std::getenv("GPUJOB_TEST_DEVICE");
  std::vector<at::Device> devices = {at::kCPU};
  if (device_env != nullptr && std::string(device_env) != "cpu") devices.emplace_back(device_env);
  const int64_t B = 2, H = 8, T = 7, K = 16, D = 64;
  for (const int64_t kv_heads : {2, 8}) {
    const at::Tensor q = at::randn({B, H, T, D}), k = at::randn({B, kv_heads, K, D}), v = at::randn({B, kv_heads, K, D});
    const AttentionParams params{0.125, 0.0};
    const at::Tensor mask = causal_mask(T, K, q.options());
    CHECK(mask.sizes() == at::IntArrayRef({1, 1, T, K}));
    CHECK(mask.sum().item<int64_t>() == T * (T + 1) / 2);
    const at::Tensor want = attention_explicit(q.to(at::kDouble), k.to(at::kDouble), v.to(at::kDouble), mask, params);
    // The keys past the queries do not count: the same result without them.
    const at::Tensor first_keys = attention_explicit(q.to(at::kDouble), k.narrow(2, 0, T).to(at::kDouble),
                                                     v.narrow(2, 0, T).to(at::kDouble), causal_mask(T, T, q.options()), params);
    CHECK(relative_error(first_keys, want) < 1e-6);  // the explicit softmax runs in float32
    for (const at::Device& device : devices) {
      for (const auto dtype : {at::kFloat, at::kBFloat16}) {
        // bfloat16: inputs and output rounded to 8 bits of mantissa.
        const double tolerance = dtype == at::kFloat ? 1e-5 : 2e-2;
        for (const auto backend : {AttentionBackend::kAuto, AttentionBackend::kFallback}) {
          INFO("kv_heads " << kv_heads << " on " << device << ", " << c10::toString(dtype)
                           << (backend == AttentionBackend::kAuto ? ", fused" : ", explicit"));
          const auto on = [&](const at::Tensor& t) { return t.to(device, dtype); };
          const at::Tensor got = attention(on(q), on(k), on(v), at::Tensor(), params, backend);
          CHECK(got.sizes() == q.sizes());
          CHECK(relative_error(got.cpu(), want) < tolerance);
        }
      }
    }
  }
}
