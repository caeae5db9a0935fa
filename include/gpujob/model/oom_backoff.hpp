// Out-of-memory back-off: run items in batches, halving the batch when the device runs out of memory.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>

namespace gpujob::model {

// Whether `e` is the device running out of memory (libtorch 2.x throws c10::OutOfMemoryError,
// 1.13 a c10::Error; both say "out of memory").
bool is_out_of_memory(const std::exception& e);

// Runs items [0, n) in consecutive batches [begin, end) of at most `batch_size` items. When
// run_batch throws an out-of-memory error, the cached device memory is released, `batch_size` is
// halved, on_backoff(new size) is called and the same items are retried: nothing is skipped and no
// item is run twice to completion. Other errors, and an out-of-memory error at batch size 1,
// propagate. `batch_size` is in/out so that a caller running many chunks keeps the size that fit.
void run_batches_with_oom_backoff(int64_t n, int64_t& batch_size,
                                  const std::function<void(int64_t begin, int64_t end)>& run_batch,
                                  const std::function<void(int64_t new_batch_size)>& on_backoff = nullptr);

}  // namespace gpujob::model
