// Extraction: the forward pass over a chunk of samples (batched, sorted by length, early exit)
// and the rows it writes into the shared activation file.
#pragma once

#include <cstdint>
#include <vector>

#include "gpujob/config/run_config.hpp"
#include "gpujob/io/activation_file.hpp"
#include "gpujob/model/capture.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/util/background_worker.hpp"

namespace gpujob::jobs {

// (layer, position) datasets the config asks for, in the file's order.
std::vector<io::ActivationDatasetName> requested_datasets(const config::ExtractSettings& extract);

// The capture request for those datasets.
model::CaptureRequest capture_request(const config::ExtractSettings& extract,
                                      const std::vector<int64_t>& special_token_ids);

// Runs samples [first_sample, first_sample + sequences.size()) through the decoder in batches of
// `batch_size` (longest first, so padding is small and an out-of-memory shows up at once) and
// writes their rows into `file`. The chunk is recorded as done only after every row is written.
// Out of device memory halves `batch_size` and retries (model/oom_backoff.hpp); the smaller size
// stays for the caller's next chunks.
// Every file write goes through `writer`, so the disk work (and the chunk's fdatasync) overlaps the
// next forward passes; the caller must drain() it before it touches the file again (finalize,
// close). The chunk is recorded as done by the last of its writes.
void extract_chunk(const model::Decoder& decoder, const model::CaptureRequest& request,
                   const std::vector<std::vector<int64_t>>& sequences, int64_t first_sample,
                   int64_t chunk, int64_t& batch_size, io::ActivationFile& file, BackgroundWorker& writer);

}  // namespace gpujob::jobs
