// Linear layers at the row counts of a decode step, as weight bytes read per second, for
// BENCHMARKS.md: cuBLAS (at::linear) at 1 to 32 rows (a decode step of as many sequences), and
// gpujob's matrix-vector kernel (fused_linear) at one row, where the decoder uses it; then the gated MLP's gate/up layer with its
// activation at one row: cuBLAS + the activation kernel, the matrix-vector kernel + the activation
// kernel, and the one gated kernel (fused_gated_linear); then the two layer pairs of a decoder
// block with the residual addition and RMSNorm between them (o -> gate/up, down -> next q/k/v),
// as separate kernels (matrix-vector, add + RMSNorm, matrix-vector) and folded (fused_linear_add,
// then fused_normed_gated_linear or fused_normed_linear: no norm kernel). Each
// variant runs from a CUDA graph of 32 calls over enough copies of the weight that none is still
// in the L2 cache, so the times are the kernels' own, not the host's launch overhead (compare
// with the device copy rate of bench/hf_baselines.py limits).
//
//   linear_bench [OUT:IN ...]      default: the Qwen3-8B layers (q/k/v, o, gate/up, down, LM head)
#include <ATen/ATen.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gpujob/model/fused_ops.hpp"
#include "graph_timing.hpp"

using bench::seconds_per_call;

int main(int argc, char** argv) {
  using namespace gpujob::model;
  std::vector<std::pair<int64_t, int64_t>> shapes = {{6144, 4096}, {4096, 4096}, {24576, 4096}, {4096, 12288}, {151936, 4096}};
  if (argc > 1) {
    shapes.clear();
    for (int i = 1; i < argc; ++i) {
      const std::string s = argv[i];
      const auto colon = s.find(':');
      if (colon == std::string::npos) {
        std::fprintf(stderr, "usage: linear_bench [OUT:IN ...]\n");
        return 2;
      }
      shapes.push_back({std::stoll(s.substr(0, colon)), std::stoll(s.substr(colon + 1))});
    }
  }
  const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  std::printf("%-14s %5s %12s %12s %12s %12s\n", "out x in", "rows", "cuBLAS us", "cuBLAS GB/s", "kernel us", "kernel GB/s");
  for (const auto& [out, in] : shapes) {
    const double bytes = 2.0 * out * in;
    const std::vector<at::Tensor> weights = bench::weight_copies(out, in, opts);
    const int copies = static_cast<int>(weights.size());
    for (const int64_t rows : {1, 2, 4, 8, 16, 32}) {
      const at::Tensor x = at::randn({rows, in}, opts);
      at::Tensor y;
      const auto call_blas = [&](int i) { y = at::linear(x, weights[i % copies]); };
      const auto call_kernel = [&](int i) { y = fused_linear(x, weights[i % copies], {}); };
      const double blas = seconds_per_call(call_blas, 32);
      std::printf("%6lld x %-6lld %5lld %12.1f %12.0f", static_cast<long long>(out), static_cast<long long>(in),
                  static_cast<long long>(rows), blas * 1e6, bytes / blas / 1e9);
      if (rows == 1) {
        const double kernel = seconds_per_call(call_kernel, 32);
        std::printf(" %12.1f %12.0f", kernel * 1e6, bytes / kernel / 1e9);
      }
      std::printf("\n");
    }
  }
  std::printf("\ngate/up + activation, one row (out = 2 x width)\n%-14s %14s %14s %14s %12s\n", "out x in",
              "cuBLAS+act us", "kernel+act us", "gated us", "gated GB/s");
  for (const auto& [out, in] : shapes) {
    if (out % 2 != 0) continue;
    const double bytes = 2.0 * out * in;
    const std::vector<at::Tensor> weights = bench::weight_copies(out, in, opts);
    const int copies = static_cast<int>(weights.size());
    const at::Tensor x = at::randn({1, in}, opts);
    at::Tensor y;
    const double blas = seconds_per_call(
        [&](int i) { y = fused_gated_activation(at::linear(x, weights[i % copies]), false); }, 32);
    const double two = seconds_per_call(
        [&](int i) { y = fused_gated_activation(fused_linear(x, weights[i % copies], {}), false); }, 32);
    const double gated = seconds_per_call([&](int i) { y = fused_gated_linear(x, weights[i % copies], false); }, 32);
    std::printf("%6lld x %-6lld %14.1f %14.1f %14.1f %12.0f\n", static_cast<long long>(out), static_cast<long long>(in),
                blas * 1e6, two * 1e6, gated * 1e6, bytes / gated / 1e9);
  }
  if (argc > 1) return 0;

  // Qwen3-8B: hidden 4096, intermediate 12288, q/k/v 6144 outputs.
  std::printf("\nlayer pairs with the residual addition + RMSNorm between them, one row\n%-24s %14s %14s %12s\n",
              "pair", "separate us", "folded us", "folded GB/s");
  const int64_t hidden = 4096, inter = 12288, qkv_out = 6144;
  struct Pair {
    const char* name;
    int64_t first_in, second_out;
    bool gated;
  };
  for (const Pair& p : {Pair{"o -> gate/up", hidden, 2 * inter, true}, Pair{"down -> q/k/v", inter, qkv_out, false}}) {
    const double bytes = 2.0 * hidden * p.first_in + 2.0 * p.second_out * hidden;
    const int copies = static_cast<int>(std::max(2.0, 1.5e9 / bytes));
    std::vector<at::Tensor> first, second;
    for (int c = 0; c < copies; ++c) {
      first.push_back(at::randn({hidden, p.first_in}, opts) * 0.02);
      second.push_back(at::randn({p.second_out, hidden}, opts) * 0.02);
    }
    const at::Tensor x = at::randn({1, p.first_in}, opts), h = at::randn({1, hidden}, opts);
    const at::Tensor norm_w = at::rand({hidden}, opts) + 0.5;
    at::Tensor y;
    const auto second_layer = [&](const at::Tensor& normed, int i) {
      return p.gated ? fused_gated_linear(normed, second[i % copies], false) : fused_linear(normed, second[i % copies], {});
    };
    const double separate = seconds_per_call(
        [&](int i) {
          const auto [sum, normed] = fused_add_rms_norm(h, fused_linear(x, first[i % copies], {}), norm_w, 1e-6, 0.0);
          y = second_layer(normed, i);
        },
        32);
    const double folded = seconds_per_call(
        [&](int i) {
          const ResidualRow row = fused_linear_add(x, first[i % copies], {}, h);
          y = p.gated ? fused_normed_gated_linear(row, norm_w, 1e-6, 0.0, second[i % copies], false)
                      : fused_normed_linear(row, norm_w, 1e-6, 0.0, second[i % copies], {});
        },
        32);
    std::printf("%-24s %14.1f %14.1f %12.0f\n", p.name, separate * 1e6, folded * 1e6, bytes / folded / 1e9);
  }
  return 0;
}
