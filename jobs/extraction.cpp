#include "jobs/extraction.hpp"

#include <algorithm>
#include <numeric>

#include "gpujob/model/oom_backoff.hpp"
#include "gpujob/util/log.hpp"

namespace gpujob::jobs {

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

namespace {

// Writes one batch's captured rows (batch row b is sample first_sample + order[begin + b]).
void write_batch(const model::CaptureRequest& request, const model::CaptureResult& result, int64_t first_sample,
                 const std::vector<int64_t>& order, int64_t begin, int64_t end, io::ActivationFile& file) {
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
}

}  // namespace

void extract_chunk(const model::Decoder& decoder, const model::CaptureRequest& request,
                   const std::vector<std::vector<int64_t>>& sequences, int64_t first_sample,
                   int64_t chunk, int64_t& batch_size, io::ActivationFile& file) {
  const int64_t n = static_cast<int64_t>(sequences.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return sequences[a].size() > sequences[b].size(); });

  std::vector<int64_t> num_tokens(n);
  model::run_batches_with_oom_backoff(
      n, batch_size,
      [&](int64_t begin, int64_t end) {
        std::vector<std::vector<int64_t>> batch;
        for (int64_t i = begin; i < end; ++i) batch.push_back(sequences[order[i]]);
        const model::CaptureResult result = model::forward_capture(decoder, batch, request);
        write_batch(request, result, first_sample, order, begin, end, file);
        for (int64_t b = 0; b < end - begin; ++b) num_tokens[order[begin + b]] = result.num_tokens[b];
      },
      [&](int64_t smaller) {
        // The rows of the failed batch were not written: the forward pass comes before any write.
        spdlog::warn("chunk {}: out of device memory, retrying with batch size {}", chunk, smaller);
      });
  file.write_num_tokens(first_sample, n, num_tokens.data());
  file.mark_chunk_done(chunk, first_sample, n);
}

}  // namespace gpujob::jobs
