#include "gpujob/cluster/gpu_count.hpp"

#include <torch/cuda.h>

#include <mutex>

namespace gpujob::cluster {

namespace {
std::mutex g_mutex;
std::function<int()> g_counter;
}  // namespace

int visible_gpu_count() {
  std::function<int()> counter;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    counter = g_counter;
  }
  if (counter) return counter();
  return static_cast<int>(torch::cuda::device_count());
}

void set_gpu_counter(std::function<int()> counter) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_counter = std::move(counter);
}

}  // namespace gpujob::cluster
