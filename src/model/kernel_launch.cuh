// How the .cu files of the model layer launch their kernels: with programmatic dependent launch
// where the GPU has it (compute capability 9.0 and later). A decode step is a chain of short
// kernels, each reading what the one before wrote; launched plainly, a kernel starts only after
// the previous one has fully drained, and at one sequence that gap (launch, block scheduling, the
// previous kernel's tail) costs about as much as a small kernel's work. Launched programmatically,
// a kernel's blocks start while the previous kernel finishes and wait in wait_for_prior_grids()
// until its writes are visible, so they can first read what no earlier kernel writes (weights).
//
// The rule every kernel launched here keeps: before wait_for_prior_grids() it reads nothing an
// earlier kernel may still be writing (only model weights, complete on the device before the
// decoder's first call: Decoder waits for them after loading) and writes nothing at all, and every
// thread calls it (also one that has no work), so that a grid completes only after the grids
// before it. GPUJOB_PROGRAMMATIC_LAUNCH=0
// in the environment launches plainly (the same results; for comparisons and old drivers).
#pragma once

#include <cuda_runtime.h>

#include <utility>

namespace gpujob::model::kernels::detail {

// Blocks until the grids this one depends on have completed and their writes are visible; a no-op
// when the grid was launched plainly or the GPU predates compute capability 9.0.
__device__ __forceinline__ void wait_for_prior_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next programmatically launched grid start its blocks once every block of this grid
// has called this (or exited). Called first thing: the next grid's blocks then only wait.
__device__ __forceinline__ void allow_next_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

// First thing in a kernel that reads nothing before its inputs are ready: let the next grid launch,
// then wait for the previous ones.
__device__ __forceinline__ void start_after_prior_grids() {
  allow_next_grid();
  wait_for_prior_grids();
}

// Whether kernels on the current device are launched programmatically: compute capability 9.0 or
// later and GPUJOB_PROGRAMMATIC_LAUNCH not "0" (kernel_launch.cu).
bool programmatic_launch();

// kernel<<<grid, block, shared_bytes, stream>>>(args...), programmatically where it applies.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
            Args&&... args) {
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = attribute;
  config.numAttrs = programmatic_launch() ? 1 : 0;
  // An error is left for check_launch (cudaGetLastError) as with <<<>>>.
  (void)cudaLaunchKernelEx(&config, kernel, static_cast<Params>(std::forward<Args>(args))...);
}

}  // namespace gpujob::model::kernels::detail
