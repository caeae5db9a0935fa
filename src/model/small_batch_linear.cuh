// Launcher of the small-batch linear kernel (small_batch_linear.cu): y = x W^T + bias for a few
// rows of x, the shape of a decode step. Plain pointers and sizes, no libtorch header.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "fused_kernels.cuh"

namespace gpujob::model::kernels {

// The most rows of x the kernel takes: beyond it the per-row multiply-adds, not the weight reads,
// bound the kernel and a GEMM library does better.
constexpr int64_t kSmallBatchMaxRows = 8;

// Whether the kernel takes these operands: 1..kSmallBatchMaxRows rows, in_features a multiple of
// the elements in 16 bytes, and x, w 16-byte aligned (it reads them 16 bytes at a time).
bool small_batch_linear_support(int64_t rows, int64_t in_features, int64_t element_size, const void* x,
                                const void* w);

// out [rows, out_features] = x [rows, in_features] times w [out_features, in_features] transposed,
// plus bias [out_features] when not null; all contiguous. Sums in float32, rounds once to the
// element type (as a GEMM library with a float32 accumulator and a bias epilogue does).
void small_batch_linear(ElementType type, const void* x, const void* w, const void* bias, void* out, int64_t rows,
                        int64_t out_features, int64_t in_features, cudaStream_t stream);

}  // namespace gpujob::model::kernels
