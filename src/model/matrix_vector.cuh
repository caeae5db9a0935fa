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

// The x of a layer that starts with an RMSNorm, normed by the layer's kernel itself: h [in_features]
// and the `n_squares` float32 sums of squares of h that matrix_vector_add wrote beside it (their
// total is the row's sum of squares), the norm weight [in_features], eps and offset as rms_norm.
struct NormedInput {
  const void* h = nullptr;
  const float* squares = nullptr;
  int64_t n_squares = 0;
  const void* weight = nullptr;
  float eps = 0.f, offset = 0.f;
};

// Each block holds the normed row in its shared memory: rows up to this size (the 48 KiB a launch
// gets without opting in; a hidden size of 24576 in bfloat16).
constexpr int64_t kNormedXMaxBytes = 48 * 1024;

// matrix_vector_support of h and w, the norm weight 16-byte aligned too, and the normed row fits
// kNormedXMaxBytes.
bool normed_matrix_vector_support(int64_t in_features, int64_t element_size, const void* h, const void* norm_weight,
                                  const void* w);

// The number of sums of squares matrix_vector_add writes for out_features outputs (one per block).
int64_t matrix_vector_blocks(int64_t out_features);

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

// matrix_vector and gated_matrix_vector of RMSNorm(h) (see NormedInput): the roundings of rms_norm
// followed by the layer; the norm's sum of squares comes from the squares, not from h.
void normed_matrix_vector(ElementType type, const NormedInput& x, const void* w, const void* bias, void* out,
                          int64_t out_features, int64_t in_features, cudaStream_t stream);
void normed_gated_matrix_vector(ElementType type, const NormedInput& x, const void* w, void* out, int64_t width,
                                int64_t in_features, bool gelu_tanh, cudaStream_t stream);

// A linear layer and the residual addition after it: sum [out_features] = round(residual + round(w x
// + bias)) (bias may be null), as matrix_vector followed by add_rms_norm's sum; and squares
// [matrix_vector_blocks(out_features)], float32 sums of squares of sum over consecutive features,
// for the next layer's NormedInput.
void matrix_vector_add(ElementType type, const void* x, const void* w, const void* bias, const void* residual,
                       void* sum, float* squares, int64_t out_features, int64_t in_features, cudaStream_t stream);

}  // namespace gpujob::model::kernels
