#include "gpujob/model/decode_graphs.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <map>

#include "gpujob/model/decoder.hpp"
#include "gpujob/util/error.hpp"

#ifdef GPUJOB_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

namespace gpujob::model {

struct DecodeGraphs::Impl {
  const Decoder& decoder;
  KvCache& cache;
  bool use_graphs = false;
  // Inputs of every step live at fixed device addresses: a graph reads them from there. Both are
  // rows of one tensor, so one copy from the host stages a step.
  at::Tensor inputs_device;  // int64 [2, n_slots]: ids, then positions
  at::Tensor ids_device, positions_device;
  at::Tensor host_staging;  // int64 [2, n_slots], pinned on CUDA: ids, then positions
#ifdef GPUJOB_WITH_CUDA
  decltype(at::cuda::graph_pool_handle()) pool{0, 0};  // the pool type moved between libtorch versions
  struct Captured {
    std::unique_ptr<at::cuda::CUDAGraph> graph;
    at::Tensor logits;  // the graph's output buffer
  };
  std::map<int64_t, Captured> graphs;  // key length -> its graph
#endif

  Impl(const Decoder& d, KvCache& c, bool graphs) : decoder(d), cache(c) {
    const at::Device device = decoder.options().device;
    const int64_t S = cache.n_slots();
    const auto longs = at::TensorOptions().dtype(at::kLong);
    inputs_device = at::zeros({2, S}, longs.device(device));
    ids_device = inputs_device[0];
    positions_device = inputs_device[1];
    use_graphs = graphs && decoder.decode_step_capturable();
#ifdef GPUJOB_WITH_CUDA
    host_staging = at::empty({2, S}, longs.pinned_memory(device.is_cuda()));
    if (use_graphs) pool = at::cuda::graph_pool_handle();
#else
    host_staging = at::empty({2, S}, longs);
#endif
  }

  at::Tensor eager(int64_t key_len) {
    return decoder.decode_step(cache, ids_device, positions_device, key_len);
  }

#ifdef GPUJOB_WITH_CUDA
  // Captures the step for key_len on a side stream (graphs cannot be captured on the default
  // stream). The eager run first warms up what must not happen during capture (cuBLAS handles
  // and workspaces, lazily loaded kernels); it writes the same keys and values the graph will.
  at::Tensor capture(int64_t key_len) {
    C10_CUDA_CHECK(cudaDeviceSynchronize());  // the inputs, copied on the current stream
    c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    at::Tensor out;
    {
      c10::cuda::CUDAStreamGuard guard(side);
      (void)eager(key_len);
      C10_CUDA_CHECK(cudaStreamSynchronize(side.stream()));
      graph->capture_begin(pool);
      try {
        out = eager(key_len);
      } catch (...) {
        try {
          graph->capture_end();
        } catch (...) {
        }
        throw;
      }
      graph->capture_end();
    }
    C10_CUDA_CHECK(cudaDeviceSynchronize());
    // The capture only recorded the step: run it for this call's inputs.
    graph->replay();
    graphs[key_len] = {std::move(graph), out};
    return out;
  }

  at::Tensor replay(int64_t key_len) {
    auto found = graphs.find(key_len);
    if (found != graphs.end()) {
      found->second.graph->replay();
      return found->second.logits;
    }
    try {
      return capture(key_len);
    } catch (const std::exception& e) {
      use_graphs = false;
      (void)cudaGetLastError();  // clear a capture error so the eager step can run
      spdlog::warn("decode: capturing a CUDA graph failed ({}); decoding without graphs from now on", e.what());
      return eager(key_len);
    }
  }
#endif
};

DecodeGraphs::DecodeGraphs(const Decoder& decoder, KvCache& cache, bool use_graphs)
    : impl_(std::make_unique<Impl>(decoder, cache, use_graphs)) {}

DecodeGraphs::~DecodeGraphs() = default;

bool DecodeGraphs::uses_graphs() const { return impl_->use_graphs; }

at::Tensor DecodeGraphs::step(const std::vector<int64_t>& ids, const std::vector<int64_t>& positions,
                              int64_t key_len) {
  const int64_t S = impl_->cache.n_slots();
  GPUJOB_CHECK(static_cast<int64_t>(ids.size()) == S && static_cast<int64_t>(positions.size()) == S,
               "decode step: ", ids.size(), " ids and ", positions.size(), " positions for ", S, " slots");
  // The previous step's tokens were read on the host before this call, so the staging buffer and
  // the device inputs are free to overwrite.
  int64_t* staged = impl_->host_staging.data_ptr<int64_t>();
  std::copy(ids.begin(), ids.end(), staged);
  std::copy(positions.begin(), positions.end(), staged + S);
  impl_->inputs_device.copy_(impl_->host_staging, /*non_blocking=*/true);
#ifdef GPUJOB_WITH_CUDA
  if (impl_->use_graphs) return impl_->replay(key_len);
#endif
  return impl_->eager(key_len);
}

}  // namespace gpujob::model
