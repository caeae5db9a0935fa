// Launcher of the L2 prefetch kernel (l2_prefetch.cu): plain pointers and sizes, no libtorch header.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace gpujob::model::kernels {

// Whether the current device takes bulk L2 prefetches (compute capability 9.0 and later).
bool l2_prefetch_support();

// Asks the L2 cache to load the first bytes_per_row bytes of each of `rows` rows of a weight, rows
// row_stride bytes apart from p, and returns at once: a kernel launched programmatically that
// issues the prefetches before it waits for the kernels ahead of it, so the reads run while they
// finish and while the kernels after it start. p and row_stride multiples of 16 bytes;
// bytes_per_row is rounded down to one. Nothing is launched where l2_prefetch_support() is false.
void l2_prefetch(const void* p, int64_t rows, int64_t row_stride, int64_t bytes_per_row, cudaStream_t stream);

}  // namespace gpujob::model::kernels
