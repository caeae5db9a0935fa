// Weights prefetched into the L2 cache before a linear layer (CUDA builds, compute capability 9.0
// and later), for BENCHMARKS.md: each call is what a decode step does between two layers (a short
// kernel, here the residual addition + RMSNorm of `rows` rows, then the linear layer) with a bulk
// prefetch of the layer's weight issued just before the short kernel, and the time per call with
// and without it. The prefetch takes either a prefix of the weight (its first MB) or the first
// fraction of every row (so that every output tile finds its first inputs in L2). With --kv MB,
// a read of that many MB (the attention's keys and values) comes between the prefetch and the
// layer. Each variant runs from a CUDA graph of 32 calls over enough copies of the weight that
// none is still in the L2 cache.
//
//   l2_prefetch_bench [--kv MB] [OUT:IN ...]      default: the Qwen3-8B layers (q/k/v, o, gate/up, down)
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "gpujob/model/fused_ops.hpp"
#include "graph_timing.hpp"

using bench::seconds_per_call;

int main(int argc, char** argv) {
  using namespace gpujob::model;
  std::vector<std::pair<int64_t, int64_t>> shapes;
  double kv_mb = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--kv" && i + 1 < argc) {
      kv_mb = std::stod(argv[++i]);
      continue;
    }
    const auto colon = s.find(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "usage: l2_prefetch_bench [--kv MB] [OUT:IN ...]\n");
      return 2;
    }
    shapes.push_back({std::stoll(s.substr(0, colon)), std::stoll(s.substr(colon + 1))});
  }
  if (shapes.empty()) shapes = {{6144, 4096}, {4096, 4096}, {24576, 4096}, {4096, 12288}};
  const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  const int64_t hidden = 4096;
  const at::Tensor norm_weight = at::randn({hidden}, opts);
  std::vector<at::Tensor> kv;
  if (kv_mb > 0)
    for (int c = 0; c < 4; ++c) kv.push_back(at::randn({static_cast<int64_t>(kv_mb * 1e6 / 2)}, opts));
  const char* placement = std::getenv("L2_PREFETCH_SIDE");
  const bool side = placement != nullptr && placement[0] == '1';
  const c10::cuda::CUDAStream side_stream = c10::cuda::getStreamFromPool();
  cudaEvent_t fork, join;
  cudaEventCreateWithFlags(&fork, cudaEventDisableTiming);
  cudaEventCreateWithFlags(&join, cudaEventDisableTiming);
  std::printf("prefetch on %s\n", side ? "a side stream" : "the work's stream");
  std::printf("%-14s %5s %-22s %10s %10s\n", "out x in", "rows", "prefetch", "us/call", "saved us");
  for (const auto& [out, in] : shapes) {
    const std::vector<at::Tensor> weights = bench::weight_copies(out, in, opts);
    const int copies = static_cast<int>(weights.size());
    const int64_t row_bytes = in * 2, weight_bytes = out * row_bytes;
    for (const int64_t rows : {32, 1}) {
      const at::Tensor x = at::randn({rows, in}, opts);
      const at::Tensor a = at::randn({rows, hidden}, opts), b = at::randn({rows, hidden}, opts);
      // pre_rows < 0: no prefetch at all; else the first bytes_per_row of pre_rows rows, on the
      // stream of the work (a kernel in its chain) or, with side, on a stream of its own that the
      // work's stream joins at the end of the call (nothing waits for it but that join).
      const auto time = [&](int64_t pre_rows, int64_t bytes_per_row) {
        at::Tensor y;
        const auto call = [&](int i) {
          const at::Tensor& w = weights[i % copies];
          const cudaStream_t work = at::cuda::getCurrentCUDAStream().stream();
          if (pre_rows >= 0 && side) {
            cudaEventRecord(fork, work);
            cudaStreamWaitEvent(side_stream.stream(), fork, 0);
            {
              c10::cuda::CUDAStreamGuard guard(side_stream);
              fused_prefetch_l2(w, pre_rows, bytes_per_row);
            }
            cudaEventRecord(join, side_stream.stream());
          } else if (pre_rows >= 0) {
            fused_prefetch_l2(w, pre_rows, bytes_per_row);
          }
          (void)fused_add_rms_norm(a, b, norm_weight, 1e-6, 0.0);
          if (!kv.empty()) (void)kv[i % kv.size()].sum();
          y = rows == 1 && fused_linear_apply(x, w) ? fused_linear(x, w, {}) : at::linear(x, w);
          if (pre_rows >= 0 && side) cudaStreamWaitEvent(work, join, 0);
        };
        return seconds_per_call(call, 32);
      };
      const double none = time(-1, 0);
      const auto report = [&](const std::string& what, double s) {
        std::printf("%6lld x %-6lld %5lld %-22s %10.1f %10.1f\n", static_cast<long long>(out),
                    static_cast<long long>(in), static_cast<long long>(rows), what.c_str(), s * 1e6,
                    (none - s) * 1e6);
      };
      report("none", none);
      report("16 bytes (a launch)", time(1, 16));
      for (const double mb : {8.0, 16.0, 32.0}) {
        const int64_t bytes = static_cast<int64_t>(mb * 1e6);
        if (bytes > weight_bytes * 1.2) break;
        const int64_t whole_rows = (bytes + row_bytes - 1) / row_bytes;
        report("first " + std::to_string(static_cast<int>(mb)) + " MB", time(whole_rows, row_bytes));
      }
      for (const int parts : {8, 4, 2}) {
        const int64_t bytes_per_row = row_bytes / parts;
        if (bytes_per_row * out > 60e6) break;
        report("1/" + std::to_string(parts) + " of each row (" +
                   std::to_string(static_cast<int>(bytes_per_row * out / 1e6)) + " MB)",
               time(out, bytes_per_row));
      }
    }
  }
  return 0;
}
