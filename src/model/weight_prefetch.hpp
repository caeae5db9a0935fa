// WeightPrefetch: loads the first bytes of the next layer's weight into the L2 cache while the
// short kernels before that layer (norms, the activation, the attention) leave memory idle. The
// prefetches run on a stream of their own, forked from the decoder's stream where they are asked
// for and joined back once per step, so no kernel of the step ever waits for one. Private to the
// model layer (Decoder's decode steps).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>

namespace gpujob::model {

class WeightPrefetch {
 public:
  // On for a CUDA device of compute capability 9.0 or later in a build with the fused kernels,
  // unless GPUJOB_L2_PREFETCH=0 in the environment. GPUJOB_L2_PREFETCH_MB sets the megabytes
  // loaded per weight (default 16).
  explicit WeightPrefetch(c10::Device device);
  ~WeightPrefetch();
  WeightPrefetch(const WeightPrefetch&) = delete;
  WeightPrefetch& operator=(const WeightPrefetch&) = delete;

  bool enabled() const { return impl_ != nullptr; }
  // After the work queued so far on the current stream, loads the first megabytes of w (a
  // contiguous matrix) into L2. Nothing when disabled or w is undefined.
  void prefetch(const at::Tensor& w);
  // Makes the current stream wait for the prefetches queued so far: a CUDA graph's capture must
  // join every stream it forked. Call once at the end of a step.
  void join();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpujob::model
