// The number of GPUs this process sees, behind a replaceable function (tests inject one).
#pragma once

#include <functional>

namespace gpujob::cluster {

// Default: libtorch's CUDA device count (0 in CPU builds).
int visible_gpu_count();
// Replaces the counter; an empty function restores the default.
void set_gpu_counter(std::function<int()> counter);

}  // namespace gpujob::cluster
