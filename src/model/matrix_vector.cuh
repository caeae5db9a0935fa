// Launchers of the matrix-vector kernels (matrix_vector.cu): y = W x + bias for one row x, the
// linear layers of a one-sequence decode step, and the gate/up layer of a gated MLP with its
// activation. Plain pointers and sizes, no libtorch header.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "fused_kernels.cuh"

namespace gpujob::model::kernels {

// Whether the kernel takes these operands: in_features a multiple of the elements in 16 bytes,
// x and w 16-byte aligned (it reads them 16 bytes at a time).
bool matrix_vector_support(int64_t in_features, int64_t element_size, const void* x, const void* w);

// out [out_features] = w [out_features, in_features] times x [in_features], plus bias
// [out_features] when not null; all contiguous. Sums in float32 and rounds once to the element
// type, as a GEMM library with a float32 accumulator and a bias epilogue does.
void matrix_vector(ElementType type, const void* x, const void* w, const void* bias, void* out, int64_t out_features,
                   int64_t in_features, cudaStream_t stream);

// The gated MLP's first half for one row x: out [width] = round(act(g)) * u with g, u = the rows
// f and width + f of w [2 * width, in_features] (gate stacked over up) times x, each rounded to the
// element type: matrix_vector into [2 * width] followed by gated_activation, in one kernel. act:
// SiLU, or GELU with the tanh approximation. Operands as matrix_vector_support requires.
void gated_matrix_vector(ElementType type, const void* x, const void* w, void* out, int64_t width,
                         int64_t in_features, bool gelu_tanh, cudaStream_t stream);

}  // namespace gpujob::model::kernels
