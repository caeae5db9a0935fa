// Linear layers at the row counts of a decode step, as weight bytes read per second, for
// BENCHMARKS.md: cuBLAS (at::linear) against gpujob's kernels (fused_linear: the matrix-vector
// kernel at one row, the few-row tensor-core kernel at 2 to 32); then the gated MLP's gate/up layer
// with its activation: cuBLAS + the activation kernel against the one gated kernel
// (fused_gated_linear); then the two layer pairs of a decoder block with the residual addition
// and RMSNorm between them (o -> gate/up, down -> next q/k/v), as cuBLAS with the separate add +
// RMSNorm and activation kernels, and folded (fused_linear_add, then fused_normed_gated_linear or
// fused_normed_linear: no norm kernel). With --sweep, the few-row kernel at 8, 16 and 32 rows for
// each count of input splits, against the count it chooses. Each variant runs from a CUDA graph of
// 32 calls over enough copies of the weight that none is still in the L2 cache, so the times are
// the kernels' own, not the host's launch overhead (compare with the device copy rate of
// bench/hf_baselines.py limits).
//
//   linear_bench [--sweep] [OUT:IN ...]   default: the Qwen3-8B layers (q/k/v, o, gate/up, down, LM head)
#include <ATen/ATen.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gpujob/model/fused_ops.hpp"
#include "graph_timing.hpp"

using bench::seconds_per_call;
using namespace gpujob::model;

namespace {

const auto kOptions = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);

// Copies of a weight [out, in], more than the L2 cache holds together.
std::vector<at::Tensor> weight_copies(int64_t out, int64_t in) {
  const int copies = static_cast<int>(std::max(2.0, 1.5e9 / (2.0 * out * in)));
  std::vector<at::Tensor> weights;
  for (int c = 0; c < copies; ++c) weights.push_back(at::randn({out, in}, kOptions) * 0.02);
  return weights;
}

void plain_layers(const std::vector<std::pair<int64_t, int64_t>>& shapes) {
  std::printf("%-14s %5s %12s %12s %12s %12s\n", "out x in", "rows", "cuBLAS us", "cuBLAS GB/s", "kernel us",
              "kernel GB/s");
  for (const auto& [out, in] : shapes) {
    const double bytes = 2.0 * out * in;
    const auto weights = weight_copies(out, in);
    const size_t copies = weights.size();
    for (const int64_t rows : {1, 2, 4, 8, 16, 32}) {
      const at::Tensor x = at::randn({rows, in}, kOptions);
      at::Tensor y;
      const double blas = seconds_per_call([&](int i) { y = at::linear(x, weights[i % copies]); }, 32);
      const double kernel = seconds_per_call([&](int i) { y = fused_linear(x, weights[i % copies], {}); }, 32);
      std::printf("%6lld x %-6lld %5lld %12.1f %12.0f %12.1f %12.0f\n", static_cast<long long>(out),
                  static_cast<long long>(in), static_cast<long long>(rows), blas * 1e6, bytes / blas / 1e9,
                  kernel * 1e6, bytes / kernel / 1e9);
    }
  }
}

void gated_layers(const std::vector<std::pair<int64_t, int64_t>>& shapes) {
  std::printf("\ngate/up + activation (out = 2 x width)\n%-14s %5s %14s %14s %12s\n", "out x in", "rows",
              "cuBLAS+act us", "gated us", "gated GB/s");
  for (const auto& [out, in] : shapes) {
    if (out % 2 != 0) continue;
    const double bytes = 2.0 * out * in;
    const auto weights = weight_copies(out, in);
    const size_t copies = weights.size();
    for (const int64_t rows : {1, 8, 32}) {
      const at::Tensor x = at::randn({rows, in}, kOptions);
      at::Tensor y;
      const double blas = seconds_per_call(
          [&](int i) { y = fused_gated_activation(at::linear(x, weights[i % copies]), false); }, 32);
      const double gated = seconds_per_call([&](int i) { y = fused_gated_linear(x, weights[i % copies], false); }, 32);
      std::printf("%6lld x %-6lld %5lld %14.1f %14.1f %12.0f\n", static_cast<long long>(out),
                  static_cast<long long>(in), static_cast<long long>(rows), blas * 1e6, gated * 1e6,
                  bytes / gated / 1e9);
    }
  }
}

// Qwen3-8B: hidden 4096, intermediate 12288, q/k/v 6144 outputs.
void layer_pairs() {
  std::printf("\nlayer pairs with the residual addition + RMSNorm between them\n%-24s %5s %14s %14s %12s\n", "pair",
              "rows", "separate us", "folded us", "folded GB/s");
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
      first.push_back(at::randn({hidden, p.first_in}, kOptions) * 0.02);
      second.push_back(at::randn({p.second_out, hidden}, kOptions) * 0.02);
    }
    for (const int64_t rows : {1, 32}) {
      const at::Tensor x = at::randn({rows, p.first_in}, kOptions), h = at::randn({rows, hidden}, kOptions);
      const at::Tensor norm_w = at::rand({hidden}, kOptions) + 0.5;
      at::Tensor y;
      // Separate: what the decoder ran before the folded path took this row count (cuBLAS from two
      // rows, the matrix-vector kernel at one).
      const auto layer = [&](const at::Tensor& in, const at::Tensor& w) {
        return rows == 1 ? fused_linear(in, w, {}) : at::linear(in, w);
      };
      const double separate = seconds_per_call(
          [&](int i) {
            const auto [sum, normed] = fused_add_rms_norm(h, layer(x, first[i % copies]), norm_w, 1e-6, 0.0);
            y = p.gated ? fused_gated_activation(layer(normed, second[i % copies]), false)
                        : layer(normed, second[i % copies]);
          },
          32);
      const double folded = seconds_per_call(
          [&](int i) {
            const ResidualRow row = fused_linear_add(x, first[i % copies], {}, h);
            y = p.gated ? fused_normed_gated_linear(row, norm_w, 1e-6, 0.0, second[i % copies], false)
                        : fused_normed_linear(row, norm_w, 1e-6, 0.0, second[i % copies], {});
          },
          32);
      std::printf("%-24s %5lld %14.1f %14.1f %12.0f\n", p.name, static_cast<long long>(rows), separate * 1e6,
                  folded * 1e6, bytes / folded / 1e9);
    }
  }
}

// The few-row kernel for each split count (0: its own choice), plain layers and the gate/up layer.
void split_sweep(const std::vector<std::pair<int64_t, int64_t>>& shapes) {
  const std::vector<int64_t> splits = {0, 1, 2, 3, 4, 5, 6, 8, 11, 16};
  std::printf("\nfew-row kernel, us per call by input splits (0: chosen)\n%-20s %5s", "layer", "rows");
  for (const int64_t s : splits) std::printf(" %7lld", static_cast<long long>(s));
  std::printf("\n");
  for (const auto& [out, in] : shapes) {
    for (const bool gated : {false, true}) {
      if (gated && out != 24576) continue;  // the stacked gate/up weight
      const double bytes = 2.0 * out * in;
      const auto weights = weight_copies(out, in);
      const size_t copies = weights.size();
      for (const int64_t rows : {8, 16, 32}) {
        const at::Tensor x = at::randn({rows, in}, kOptions);
        at::Tensor y;
        std::printf("%6lld x %-6lld%s %5lld", static_cast<long long>(out), static_cast<long long>(in),
                    gated ? " g" : "  ", static_cast<long long>(rows));
        double best = 1e9;
        for (const int64_t s : splits) {
          const double t = seconds_per_call(
              [&](int i) {
                y = gated ? fused_gated_linear(x, weights[i % copies], false, s) : fused_linear(x, weights[i % copies], {}, s);
              },
              32);
          best = std::min(best, t);
          std::printf(" %7.1f", t * 1e6);
        }
        std::printf("   best %.0f GB/s\n", bytes / best / 1e9);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::pair<int64_t, int64_t>> shapes = {{6144, 4096}, {4096, 4096}, {24576, 4096}, {4096, 12288}, {151936, 4096}};
  bool sweep = false, custom = false;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--sweep") {
      sweep = true;
      continue;
    }
    const auto colon = s.find(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "usage: linear_bench [--sweep] [OUT:IN ...]\n");
      return 2;
    }
    if (!custom) shapes.clear();
    custom = true;
    shapes.push_back({std::stoll(s.substr(0, colon)), std::stoll(s.substr(colon + 1))});
  }
  if (sweep) {
    split_sweep(shapes);
    return 0;
  }
  plain_layers(shapes);
  gated_layers(shapes);
  if (!custom) layer_pairs();
  return 0;
}
