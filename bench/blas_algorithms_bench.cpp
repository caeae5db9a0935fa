// Does the choice of GEMM algorithm matter for the linear layers of a decode step of a few rows?
// For each layer shape and row count: at::linear as the decoder calls it (libtorch's default BLAS
// backend), at::linear with cuBLASLt preferred (libtorch 2.3+), and every algorithm cuBLASLt's
// heuristics offer for y = x W^T in bfloat16 (up to 64, with a 64 MiB workspace), each timed from a
// CUDA graph of 32 calls over enough copies of the weight that none is still in the L2 cache
// (bench/graph_timing.hpp). Prints weight GB/s: the first choice of the heuristics, the best of
// them, and which one that is. Then the same layers split along their inputs into float32 partial
// sums with no reduction (the decoder's split_linear, and cuBLASLt's choices for 2 to 8 slices),
// and the o and down layers with the residual addition + RMSNorm after them, unsplit and split
// (us per pair). CUDA builds only.
//
//   blas_algorithms_bench [ROWS ...]     default: 8 16 32; the Qwen3-8B layers
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/version.h>

#include <cublasLt.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "gpujob/model/fused_ops.hpp"
#include "graph_timing.hpp"

using bench::seconds_per_call;

namespace {

void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "blas_algorithms_bench: %s failed with cuBLAS status %d\n", what, static_cast<int>(status));
    std::exit(1);
  }
}

// One GEMM shape y[rows, out] = x[rows, in] W[out, in]^T in cuBLASLt's column-major terms:
// D[out, rows] = op(A) B with A = W stored as [in, out] (transposed), B = x as [in, rows].
struct LtGemm {
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulPreference_t preference = nullptr;

  // splits > 1: the inputs cut into that many slices, each slice's product a float32 [rows, out]
  // partial sum of its own (a strided batch over the slices; the sum of the partials is y).
  LtGemm(cublasLtHandle_t h, int64_t out, int64_t in, int64_t rows, size_t workspace, int64_t splits = 1)
      : handle(h) {
    check(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
    const cublasOperation_t transpose = CUBLAS_OP_T;
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof(transpose)),
          "CUBLASLT_MATMUL_DESC_TRANSA");
    const int64_t k = in / splits;
    check(cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, k, out, in), "layout A");
    check(cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, k, rows, in), "layout B");
    check(cublasLtMatrixLayoutCreate(&d, splits > 1 ? CUDA_R_32F : CUDA_R_16BF, out, rows, out), "layout D");
    if (splits > 1) {
      const int32_t count = static_cast<int32_t>(splits);
      const int64_t d_stride = out * rows;
      for (cublasLtMatrixLayout_t layout : {a, b, d})
        check(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)),
              "CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT");
      for (cublasLtMatrixLayout_t layout : {a, b})
        check(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &k, sizeof(k)),
              "CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET");
      check(cublasLtMatrixLayoutSetAttribute(d, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &d_stride,
                                             sizeof(d_stride)),
            "CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET");
    }
    check(cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
    check(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                               sizeof(workspace)),
          "CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES");
  }
  ~LtGemm() {
    cublasLtMatmulPreferenceDestroy(preference);
    cublasLtMatrixLayoutDestroy(d);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatmulDescDestroy(desc);
  }
  std::vector<cublasLtMatmulHeuristicResult_t> algorithms(int wanted) const {
    std::vector<cublasLtMatmulHeuristicResult_t> found(static_cast<size_t>(wanted));
    int count = 0;
    check(cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, d, d, preference, wanted, found.data(), &count),
          "cublasLtMatmulAlgoGetHeuristic");
    found.resize(static_cast<size_t>(count));
    return found;
  }
  void run(const cublasLtMatmulAlgo_t& algo, const at::Tensor& w, const at::Tensor& x, at::Tensor& y,
           at::Tensor& workspace) const {
    const float one = 1.0f, zero = 0.0f;
    check(cublasLtMatmul(handle, desc, &one, w.data_ptr(), a, x.data_ptr(), b, &zero, y.data_ptr(), d, y.data_ptr(), d,
                         &algo, workspace.data_ptr(), static_cast<size_t>(workspace.numel()),
                         at::cuda::getCurrentCUDAStream().stream()),
          "cublasLtMatmul");
  }
};

struct Shape {
  const char* name;
  int64_t out, in;
};

// One layer shape at one row count: copies of its weight that keep the calls out of L2, an input,
// and the seconds per call of at::linear, which every variant is held against.
struct LayerCase {
  const Shape& shape;
  int64_t rows;
  const std::vector<at::Tensor>& weights;
  at::Tensor x;
  double linear;
  const at::Tensor& weight(int i) const { return weights[static_cast<size_t>(i) % weights.size()]; }
  double rate(double seconds) const { return 2.0 * shape.out * shape.in / seconds / 1e9; }  // weight GB/s
};

// Calls fn(LayerCase) for every shape of at most max_out outputs and every row count.
template <typename F>
void for_each_case(const std::vector<Shape>& shapes, const std::vector<int64_t>& row_counts,
                   const at::TensorOptions& opts, int64_t max_out, F&& fn) {
  for (const Shape& s : shapes) {
    if (s.out > max_out) continue;
    const std::vector<at::Tensor> weights = bench::weight_copies(s.out, s.in, opts);
    for (const int64_t rows : row_counts) {
      const at::Tensor x = at::randn({rows, s.in}, opts);
      at::Tensor y;
      const double linear =
          seconds_per_call([&](int i) { y = at::linear(x, weights[static_cast<size_t>(i) % weights.size()]); }, 32);
      fn(LayerCase{s, rows, weights, x, linear});
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> row_counts = {8, 16, 32};
  if (argc > 1) {
    row_counts.clear();
    for (int i = 1; i < argc; ++i) row_counts.push_back(std::stoll(argv[i]));
  }
  const std::vector<Shape> shapes = {{"q/k/v", 6144, 4096}, {"o", 4096, 4096}, {"gate/up", 24576, 4096},
                                     {"down", 4096, 12288}, {"LM head", 151936, 4096}};
  const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  at::Tensor workspace = at::empty({64 << 20}, opts.dtype(at::kByte));
  cublasLtHandle_t handle = nullptr;
  check(cublasLtCreate(&handle), "cublasLtCreate");

  std::printf("%-8s %5s %10s %10s %10s %10s %6s %s\n", "layer", "rows", "linear", "linear Lt", "Lt first",
              "Lt best", "algos", "best: index (heuristic order), tile id, split-K, stages id");
  for_each_case(shapes, row_counts, opts, INT64_MAX, [&](const LayerCase& c) {
    const Shape& s = c.shape;
    const int64_t rows = c.rows;
    at::Tensor y;
    double linear_lt = 0;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
    const at::BlasBackend before = at::globalContext().blasPreferredBackend();
    at::globalContext().setBlasPreferredBackend(at::BlasBackend::Cublaslt);
    linear_lt = seconds_per_call([&](int i) { y = at::linear(c.x, c.weight(i)); }, 32);
    at::globalContext().setBlasPreferredBackend(before);
#endif
    const LtGemm gemm(handle, s.out, s.in, rows, static_cast<size_t>(workspace.numel()));
    const auto algorithms = gemm.algorithms(64);
    double first = 0, best = 1e30;
    size_t best_index = 0;
    at::Tensor out = at::empty({rows, s.out}, opts);
    // Each algorithm's result is checked against at::linear, so a wrong one cannot win.
    const at::Tensor want = at::linear(c.x, c.weight(0)).to(at::kFloat);
    for (size_t k = 0; k < algorithms.size(); ++k) {
      gemm.run(algorithms[k].algo, c.weight(0), c.x, out, workspace);
      const double error = (out.to(at::kFloat) - want).abs().max().item<double>();
      if (error > 0.05 * want.abs().max().item<double>()) {
        std::fprintf(stderr, "%s rows %lld: algorithm %zu is off by %g\n", s.name, static_cast<long long>(rows), k, error);
        continue;
      }
      const double t = seconds_per_call([&](int i) { gemm.run(algorithms[k].algo, c.weight(i), c.x, out, workspace); }, 32);
      if (k == 0) first = t;
      if (t < best) best = t, best_index = k;
    }
    int tile = -1, split_k = -1, stages = -1;
    size_t written = 0;
    if (!algorithms.empty()) {
      const cublasLtMatmulAlgo_t& algo = algorithms[best_index].algo;
      cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile), &written);
      cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split_k, sizeof(split_k), &written);
      cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof(stages), &written);
    }
    std::printf("%-8s %5lld %10.0f %10.0f %10.0f %10.0f %6zu %zu, %d, %d, %d\n", s.name, static_cast<long long>(rows),
                c.rate(c.linear), linear_lt > 0 ? c.rate(linear_lt) : 0.0, first > 0 ? c.rate(first) : 0.0,
                best < 1e30 ? c.rate(best) : 0.0, algorithms.size(), best_index, tile, split_k, stages);
    std::fflush(stdout);
  });

  // Split-K done by the caller: the inputs cut into S slices, one float32 partial sum per slice
  // from one strided-batched GEMM, and no reduction kernel (whoever reads y adds the partials, as
  // the residual addition + RMSNorm after o and down do: gpujob/model/fused_ops.hpp, split_linear).
  // Against at::linear, whose own split-K adds a reduction kernel: GB/s of the partials' GEMM
  // alone, by split_linear (S = 4, cublasGemmStridedBatchedEx) and by cuBLASLt's heuristics
  // (first, best) for every S.
  std::printf("\nsplit-K partials (float32, no reduction), weight GB/s\n%-8s %5s %6s %10s %12s %10s %10s\n", "layer",
              "rows", "splits", "linear", "split_linear", "Lt first", "Lt best");
  for_each_case(shapes, row_counts, opts, 16384, [&](const LayerCase& c) {
    const Shape& s = c.shape;
    const int64_t rows = c.rows;
    const at::Tensor want = at::linear(c.x.to(at::kFloat), c.weight(0).to(at::kFloat));
    for (const int64_t splits : {2, 3, 4, 6, 8}) {
      if (s.in % (splits * 64) != 0) continue;
      at::Tensor partials = at::empty({splits, rows, s.out}, opts.dtype(at::kFloat));
      const auto off = [&]() {
        return (partials.sum(0) - want).abs().max().item<double>() / want.abs().max().item<double>();
      };
      double ours = 0;
      if (splits == 4 && gpujob::model::split_linear_apply(c.x, c.weight(0))) {
        partials = gpujob::model::split_linear(c.x, c.weight(0));
        if (off() > 1e-2) std::fprintf(stderr, "%s rows %lld: split_linear is off by %g\n", s.name,
                                       static_cast<long long>(rows), off());
        ours = seconds_per_call([&](int i) { partials = gpujob::model::split_linear(c.x, c.weight(i)); }, 32);
      }
      const LtGemm gemm(handle, s.out, s.in, rows, static_cast<size_t>(workspace.numel()), splits);
      const auto algorithms = gemm.algorithms(64);
      double first = 0, best = 1e30;
      for (size_t a = 0; a < algorithms.size(); ++a) {
        gemm.run(algorithms[a].algo, c.weight(0), c.x, partials, workspace);
        if (off() > 1e-2) continue;
        const double t =
            seconds_per_call([&](int i) { gemm.run(algorithms[a].algo, c.weight(i), c.x, partials, workspace); }, 32);
        if (a == 0) first = t;
        best = std::min(best, t);
      }
      std::printf("%-8s %5lld %6lld %10.0f %12.0f %10.0f %10.0f\n", s.name, static_cast<long long>(rows),
                  static_cast<long long>(splits), c.rate(c.linear), ours > 0 ? c.rate(ours) : 0.0,
                  first > 0 ? c.rate(first) : 0.0, best < 1e30 ? c.rate(best) : 0.0);
      std::fflush(stdout);
    }
  });

  // The layer and the residual addition + RMSNorm after it, as a decode step runs them: at::linear
  // then fused_add_rms_norm, against split_linear then fused_add_partials_rms_norm (us per pair).
  std::printf("\nlayer + residual addition + RMSNorm, us\n%-8s %5s %10s %10s\n", "layer", "rows", "linear", "split");
  for (const Shape& s : shapes) {
    if (s.out > 16384 || s.out == 6144) continue;
    const std::vector<at::Tensor> weights = bench::weight_copies(s.out, s.in, opts);
    const int copies = static_cast<int>(weights.size());
    const at::Tensor norm_weight = at::randn({s.out}, opts);
    for (const int64_t rows : row_counts) {
      const at::Tensor x = at::randn({rows, s.in}, opts), residual = at::randn({rows, s.out}, opts);
      if (!gpujob::model::split_linear_apply(x, weights[0])) continue;
      std::pair<at::Tensor, at::Tensor> result;
      const double plain = seconds_per_call([&](int i) {
        result = gpujob::model::fused_add_rms_norm(residual, at::linear(x, weights[i % copies]), norm_weight, 1e-6, 0.0);
      }, 32);
      const double split = seconds_per_call([&](int i) {
        result = gpujob::model::fused_add_partials_rms_norm(
            residual, gpujob::model::split_linear(x, weights[i % copies]), norm_weight, 1e-6, 0.0);
      }, 32);
      std::printf("%-8s %5lld %10.1f %10.1f\n", s.name, static_cast<long long>(rows), plain * 1e6, split * 1e6);
      std::fflush(stdout);
    }
  }
  cublasLtDestroy(handle);
  return 0;
}
