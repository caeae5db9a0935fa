#include "gpujob/model/oom_backoff.hpp"

#include <algorithm>
#include <string>

#include "gpujob/model/device.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::model {

bool is_out_of_memory(const std::exception& e) {
  return std::string(e.what()).find("out of memory") != std::string::npos;
}

void run_batches_with_oom_backoff(int64_t n, int64_t& batch_size,
                                  const std::function<void(int64_t, int64_t)>& run_batch,
                                  const std::function<void(int64_t)>& on_backoff) {
  GPUJOB_CHECK(batch_size >= 1, "batch size must be at least 1, found ", batch_size);
  for (int64_t begin = 0; begin < n;) {
    const int64_t end = std::min(n, begin + batch_size);
    try {
      run_batch(begin, end);
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e) || batch_size == 1) throw;
      batch_size = std::max<int64_t>(1, batch_size / 2);
      // What the failed attempt left cached goes back before the smaller retry.
      release_cached_device_memory();
      if (on_backoff) on_backoff(batch_size);
      continue;
    }
    begin = end;
  }
}

}  // namespace gpujob::model
