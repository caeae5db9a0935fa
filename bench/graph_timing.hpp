// Timing of device work without the host's launch overhead, for the kernel benchmarks
// (linear_bench, decode_attention_bench, blas_algorithms_bench; CUDA builds only): the calls are
// captured into one CUDA graph and the graph is replayed.
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <functional>
#include <vector>

namespace bench {

// Random [out, in] weights (scale 0.02), as many copies as together exceed the L2 cache (at least
// two), so that calls cycling through them read every weight from memory.
inline std::vector<at::Tensor> weight_copies(int64_t out, int64_t in, const at::TensorOptions& options) {
  const double bytes = static_cast<double>(out) * in * options.dtype().itemsize();
  const int copies = static_cast<int>(std::max(2.0, 1.5e9 / bytes));
  std::vector<at::Tensor> weights;
  for (int c = 0; c < copies; ++c) weights.push_back(at::randn({out, in}, options) * 0.02);
  return weights;
}

// Seconds per call of fn(i), i = 0..calls-1, replayed from a CUDA graph that holds all the calls
// (after one eager pass for cuBLAS handles and workspaces, and one replay to warm up).
inline double seconds_per_call(const std::function<void(int)>& fn, int calls) {
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  at::cuda::CUDAGraph graph;
  {
    c10::cuda::CUDAStreamGuard guard(side);
    for (int i = 0; i < calls; ++i) fn(i);
    cudaStreamSynchronize(side.stream());
    graph.capture_begin();
    for (int i = 0; i < calls; ++i) fn(i);
    graph.capture_end();
  }
  cudaDeviceSynchronize();
  graph.replay();
  cudaDeviceSynchronize();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  const int replays = 10;
  cudaEventRecord(start, at::cuda::getCurrentCUDAStream());
  for (int r = 0; r < replays; ++r) graph.replay();
  cudaEventRecord(stop, at::cuda::getCurrentCUDAStream());
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / 1000.0 / (replays * calls);
}

}  // namespace bench
