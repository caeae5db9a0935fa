// The decode attention kernel (fused_decode_attention) at the shapes of a decode step, as key and
// value bytes read per second, for BENCHMARKS.md: one query token per sequence against its KV
// cache, every split count of the keys against the one the kernel chooses, beside sdpa over the
// same cache (libtorch 2.0 or later). Each variant runs from a CUDA graph of
// 32 calls over enough copies of the cache that none is still in the L2 cache.
//
//   decode_attention_bench [BATCH:KEYS ...] [--heads 32 --kv-heads 8 --head-dim 128]
//   default: batch 1 and 32 at 384 keys (the generation benchmark's last steps) and 2048 keys.
#include <ATen/ATen.h>
#include <torch/version.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gpujob/model/fused_ops.hpp"
#include "graph_timing.hpp"

using bench::seconds_per_call;

int main(int argc, char** argv) {
  using namespace gpujob::model;
  std::vector<std::pair<int64_t, int64_t>> shapes;
  int64_t heads = 32, kv_heads = 8, dim = 128;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--heads" && i + 1 < argc) heads = std::stoll(argv[++i]);
    else if (a == "--kv-heads" && i + 1 < argc) kv_heads = std::stoll(argv[++i]);
    else if (a == "--head-dim" && i + 1 < argc) dim = std::stoll(argv[++i]);
    else if (a.find(':') != std::string::npos)
      shapes.push_back({std::stoll(a.substr(0, a.find(':'))), std::stoll(a.substr(a.find(':') + 1))});
    else {
      std::fprintf(stderr, "usage: decode_attention_bench [BATCH:KEYS ...] [--heads H --kv-heads K --head-dim D]\n");
      return 2;
    }
  }
  if (shapes.empty()) shapes = {{1, 384}, {32, 384}, {1, 2048}, {32, 2048}};
  const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  const auto index = at::TensorOptions().device(at::kCUDA).dtype(at::kLong);
  std::printf("heads %lld / kv heads %lld, head_dim %lld, bfloat16\n%6s %6s %8s %10s %10s\n", static_cast<long long>(heads),
              static_cast<long long>(kv_heads), static_cast<long long>(dim), "batch", "keys", "splits", "us", "GB/s");
  for (const auto& [batch, keys] : shapes) {
    const double bytes = 2.0 * 2 * batch * keys * kv_heads * dim;  // keys and values read once
    const int copies = static_cast<int>(std::max(2.0, 1.5e9 / bytes));
    std::vector<at::Tensor> k_caches, v_caches;
    for (int c = 0; c < copies; ++c) {
      k_caches.push_back(at::randn({batch, keys, kv_heads, dim}, opts));
      v_caches.push_back(at::randn({batch, keys, kv_heads, dim}, opts));
    }
    const at::Tensor q = at::randn({batch, heads, dim}, opts);
    const at::Tensor positions = at::full({batch}, keys - 1, index);
    at::Tensor out;
    const auto run = [&](int64_t splits) {
      return seconds_per_call(
          [&](int i) {
            DecodeAttentionRequest r;
            r.q = q;
            r.keys = k_caches[i % copies];
            r.values = v_caches[i % copies];
            r.positions = positions;
            r.key_len = keys;
            r.scale = 1.0 / std::sqrt(static_cast<double>(dim));
            r.splits = splits;
            out = fused_decode_attention(r);
          },
          32);
    };
    const auto report = [&](const char* what, double seconds) {
      std::printf("%6lld %6lld %8s %10.1f %10.0f\n", static_cast<long long>(batch), static_cast<long long>(keys), what,
                  seconds * 1e6, bytes / seconds / 1e9);
    };
    report("auto", run(0));
    for (const int64_t splits : {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64}) {
      if (splits > (keys + 15) / 16) break;
      report(std::to_string(splits).c_str(), run(splits));
    }
#if TORCH_VERSION_MAJOR >= 2
    // sdpa over the same cache, keys and values repeated per query head ([batch, heads, keys,
    // dim]): the plain way to run grouped heads through it.
    const double sdpa = seconds_per_call(
        [&](int i) {
          const at::Tensor k = k_caches[i % copies].transpose(1, 2).repeat_interleave(heads / kv_heads, 1);
          const at::Tensor v = v_caches[i % copies].transpose(1, 2).repeat_interleave(heads / kv_heads, 1);
          out = at::scaled_dot_product_attention(q.unsqueeze(2), k, v);
        },
        32);
    report("sdpa", sdpa);
#else
    std::printf("  (the sdpa row needs libtorch 2.0 or later)\n");
#endif
  }
  return 0;
}
