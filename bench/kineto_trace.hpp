// A device trace of a stretch of a bench program (libtorch's Kineto profiler): every CUDA kernel
// with its duration, saved as a Chrome trace that bench/trace_summary.py sums per kernel. Only in
// CUDA builds of libtorch >= 2; elsewhere asking for a trace is an error.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include <torch/version.h>

#if defined(GPUJOB_WITH_CUDA) && TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/autograd/profiler_kineto.h>
#define GPUJOB_BENCH_KINETO 1
#endif

namespace gpujob::bench {

// Traces from construction to destruction when path is not empty, then writes the trace there.
class KinetoTrace {
 public:
  explicit KinetoTrace(std::string path) : path_(std::move(path)) {
    if (path_.empty()) return;
#ifdef GPUJOB_BENCH_KINETO
    namespace impl = torch::profiler::impl;
    const impl::ProfilerConfig config(impl::ProfilerState::KINETO);
    const std::set<impl::ActivityType> activities{impl::ActivityType::CPU, impl::ActivityType::CUDA};
    torch::autograd::profiler::prepareProfiler(config, activities);
    torch::autograd::profiler::enableProfiler(config, activities);
#else
    throw std::runtime_error("--trace needs a CUDA build against libtorch 2 or newer");
#endif
  }
  ~KinetoTrace() {
#ifdef GPUJOB_BENCH_KINETO
    if (!path_.empty()) torch::autograd::profiler::disableProfiler()->save(path_);
#endif
  }
  KinetoTrace(const KinetoTrace&) = delete;
  KinetoTrace& operator=(const KinetoTrace&) = delete;

 private:
  std::string path_;
};

}  // namespace gpujob::bench
