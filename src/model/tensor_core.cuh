// The tensor-core product of the model layer's 16-bit kernels (decode attention): mma.sync
// m16n8k16 with float32 accumulators, its fragment layouts, and the packing of two elements into
// one operand register.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace gpujob::model::kernels::detail {

// d += a b for a 16-bit type T: a is 16 x 16 (4 registers of two elements per lane), b 16 x 8
// (2 registers), d 16 x 8 (4 floats), in the fragment layouts of the PTX ISA. With lane = 4 g + t:
// a[0] = row g, columns 2t and 2t + 1; a[1] = row g + 8, the same columns; a[2], a[3] = those rows
// at columns 2t + 8 and 2t + 9. b0 = rows 2t, 2t + 1 of column g; b1 = rows 2t + 8, 2t + 9.
// d[0], d[1] = row g, columns 2t and 2t + 1; d[2], d[3] = row g + 8.
template <typename T>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    static_assert(std::is_same_v<T, __half>, "tensor-core products take bfloat16 or float16");
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// One register of two T elements, `lo` in the low half (the operand form of mma).
template <typename T>
__device__ __forceinline__ uint32_t pack(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

}  // namespace gpujob::model::kernels::detail
