// Launchers of the few-row linear kernels (few_rows_linear.cu): the linear layers of a decode step
// of 2 to 32 sequences, on tensor cores, in the same variants as the one-row matrix-vector kernels
// (matrix_vector.cuh): a plain layer, the gated MLP's gate/up layer with its activation, a layer
// with the residual addition after it (leaving the sums of squares the next norm needs), and the
// first two with that RMSNorm folded into their input. bfloat16 and float16. Plain pointers and
// sizes, no libtorch header.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "fused_kernels.cuh"
#include "matrix_vector.cuh"

namespace gpujob::model::kernels {

// The row counts the kernels take.
constexpr int64_t kFewRowsMin = 2;
constexpr int64_t kFewRowsMax = 32;

// Whether the kernels take these operands: rows in [kFewRowsMin, kFewRowsMax], a 16-bit type,
// in_features a multiple of 32, x and w 16-byte aligned.
bool few_rows_support(int64_t rows, int64_t in_features, ElementType type, const void* x, const void* w);

// Output features per block: a layer with the residual addition writes one sum of squares per row
// and per this many consecutive features.
constexpr int64_t kFewRowsBlockFeatures = 128;
int64_t few_rows_blocks(int64_t out_features);

// One call. x is [rows, in_features] (or, with `normed`, RMSNorm of normed->h [rows, in_features]
// whose squares are [rows, normed->n_squares]); w is [out_features, in_features], or with `gated`
// the stacked gate/up weight [2 * out_features, in_features] (gate rows first); out is [rows,
// out_features]. With `residual` [rows, out_features]: out = round(residual + round(x w^T + bias))
// and squares [rows, few_rows_blocks(out_features)] the float32 sums of squares of out per block
// of features. All contiguous. Sums are float32, rounded once, as in the matrix-vector kernels.
struct FewRowsLinear {
  ElementType type = ElementType::kBFloat16;
  const void* x = nullptr;
  const NormedInput* normed = nullptr;
  const void* w = nullptr;
  const void* bias = nullptr;
  void* out = nullptr;
  const void* residual = nullptr;
  float* squares = nullptr;
  int64_t rows = 0, out_features = 0, in_features = 0;
  bool gated = false, gelu_tanh = false;
  // Slices of in_features summed by separate blocks and added by the last of them (deterministic
  // order); 0: chosen for the device. Each split beyond the first needs its float32 partial sums.
  int64_t splits = 0;
};

// The splits a call runs with (its `splits`, or the choice for the current device), and the sizes
// of the workspace that takes: float32 partial sums and int32 arrival counters.
struct FewRowsPlan {
  int64_t splits = 1, slice = 0;  // slice: in_features per split, a multiple of 32
  int64_t partial_floats = 0, counters = 0;
};
FewRowsPlan few_rows_plan(const FewRowsLinear& call);

// Runs the call. partials: plan.partial_floats floats, any contents; counters: plan.counters int32
// that are zero, and zero again when the kernel ends (so one zeroed buffer serves every call on a
// stream; calls that run at the same time need their own).
void few_rows_linear(const FewRowsLinear& call, const FewRowsPlan& plan, float* partials, int* counters,
                     cudaStream_t stream);

}  // namespace gpujob::model::kernels
