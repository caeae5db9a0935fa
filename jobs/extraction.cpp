#include "jobs/extraction.hpp"

#include <algorithm>
#include <numeric>

#include "gpujob/util/error.hpp"
#include "gpujob/model/device.hpp"
#include "gpujob/util/log.hpp"

namespace gpujob::jobs {
namespace {

// Out-of-memory on the device: libtorch 2.x throws c10::OutOfMemoryError, 1.13 a c10::Error
// whose message says so.
bool is_out_of_memory(const std::exception& e) {
  const std::string what = e.what();
  return what.find("out of memory") != std::string::npos ||
         what.find("CUDA error: out of memory") != std::string::npos;
}

}  // namespace

std::vector<io::ActivationDatasetName> requested_datasets(const config::ExtractSettings& extract) {
  std::vector<io::ActivationDatasetName> out;
  for (int layer : extract.layers) {
    for (auto position : extract.positions) out.push_back({layer, config::name(position)});
  }
  return out;
}

model::CaptureRequest capture_request(const config::ExtractSettings& extract,
                                      const std::vector<int64_t>& special_token_ids) {
  model::CaptureRequest request;
  request.layers.assign(extract.layers.begin(), extract.layers.end());
  for (auto position : extract.positions) {
    request.positions.push_back(model::parse_pooling(config::name(position)));
  }
  request.special_token_ids = special_token_ids;
  request.out_dtype = at::kFloat;  // the file converts to float16 when it stores float16
  return request;
}

void extract_chunk(const model::Decoder& decoder, const model::CaptureRequest& request,
                   const std::vector<std::vector<int64_t>>& sequences, int64_t first_sample,
                   int64_t chunk, int batch_size, io::ActivationFile& file) {
  const int64_t n = static_cast<int64_t>(sequences.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return sequences[a].size() > sequences[b].size(); });

  std::vector<int64_t> num_tokens(n);
  int64_t current_batch = std::max(1, batch_size);
  for (int64_t begin = 0; begin < n;) {
    const int64_t end = std::min<int64_t>(n, begin + current_batch);
    std::vector<std::vector<int64_t>> batch;
    for (int64_t i = begin; i < end; ++i) batch.push_back(sequences[order[i]]);
    model::CaptureResult result;
    try {
      result = model::forward_capture(decoder, batch, request);
    } catch (const std::exception& e) {
      // Out of device memory: halve the batch and retry the same sequences; nothing is lost.
      if (!is_out_of_memory(e) || current_batch == 1) throw;
      current_batch = std::max<int64_t>(1, current_batch / 2);
      spdlog::warn("chunk {}: out of device memory, retrying with batch size {}", chunk, current_batch);
      model::release_cached_device_memory();
      continue;
    }

    for (size_t li = 0; li < request.layers.size(); ++li) {
      const int layer = static_cast<int>(request.layers[li]);
      for (size_t pi = 0; pi < request.positions.size(); ++pi) {
        const auto pooling = request.positions[pi];
        const at::Tensor rows = result.activations[li][pi].to(at::kFloat).contiguous();
        const int64_t hidden = rows.size(1);
        const float* data = rows.data_ptr<float>();
        for (int64_t b = 0; b < end - begin; ++b) {
          const int64_t sample = first_sample + order[begin + b];
          if (pooling == model::Pooling::kAll) {
            file.write_token_rows(layer, sample, result.num_tokens[b],
                                  data + result.token_offset[b] * hidden);
          } else {
            file.write_sample_rows(layer, model::pooling_name(pooling), sample, 1, data + b * hidden);
          }
        }
      }
    }
    for (int64_t b = 0; b < end - begin; ++b) num_tokens[order[begin + b]] = result.num_tokens[b];
    begin = end;
  }
  file.write_num_tokens(first_sample, n, num_tokens.data());
  file.mark_chunk_done(chunk, first_sample, n);
}

}  // namespace gpujob::jobs
