// Timing of device work without the host's launch overhead, for the kernel benchmarks
// (linear_bench, decode_attention_bench; CUDA builds only): the calls are captured into one CUDA
// graph and the graph is replayed.
#pragma once

#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>

#include <functional>

namespace bench {

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
