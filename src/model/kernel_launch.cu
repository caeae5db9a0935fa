// Whether kernels are launched programmatically (see kernel_launch.cuh): decided once per device.
#include "kernel_launch.cuh"

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>

namespace gpujob::model::kernels::detail {
namespace {

bool enabled_by_environment() {
  const char* value = std::getenv("GPUJOB_PROGRAMMATIC_LAUNCH");
  return value == nullptr || std::strcmp(value, "0") != 0;
}

}  // namespace

bool programmatic_launch() {
  static const bool by_environment = enabled_by_environment();
  if (!by_environment) return false;
  // Per device: 0 not yet asked, 1 no, 2 yes. Asked at most once per device, from any thread.
  static std::array<std::atomic<int>, 64> answers{};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= static_cast<int>(answers.size())) return false;
  int answer = answers[device].load(std::memory_order_relaxed);
  if (answer == 0) {
    int major = 0;
    const bool known = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess;
    answer = known && major >= 9 ? 2 : 1;
    answers[device].store(answer, std::memory_order_relaxed);
  }
  return answer == 2;
}

}  // namespace gpujob::model::kernels::detail
