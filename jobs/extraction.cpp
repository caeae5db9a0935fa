#include "jobs/extraction.hpp"

#include <algorithm>
#include <numeric>

#include "gpujob/model/oom_backoff.hpp"
#include "gpujob/util/error.hpp"
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

// Rows of a chunk for one pooled (one row per sample) dataset, in sample order; written to the file
// in one call when the chunk is done (one large write instead of one per sample).
struct PooledRows {
  int layer = 0;
  model::Pooling pooling = model::Pooling::kLast;
  int64_t hidden = 0;
  std::vector<float> rows;  // [samples of the chunk, hidden]
};

// Queues the writes of a batch's `all` rows (per sample, at its token offset) and copies its pooled
// rows into the chunk's buffers. Batch row b is chunk sample order[begin + b].
void take_batch(const model::CaptureRequest& request, const model::CaptureResult& result, int64_t first_sample,
                const std::vector<int64_t>& order, int64_t begin, int64_t end, std::vector<PooledRows>& pooled,
                io::ActivationFile& file, BackgroundWorker& writer) {
  size_t next_pooled = 0;
  for (size_t li = 0; li < request.layers.size(); ++li) {
    const int layer = static_cast<int>(request.layers[li]);
    for (size_t pi = 0; pi < request.positions.size(); ++pi) {
      const auto pooling = request.positions[pi];
      const at::Tensor rows = result.activations[li][pi].to(at::kFloat).contiguous();
      const int64_t hidden = rows.size(1);
      const float* data = rows.data_ptr<float>();
      if (pooling == model::Pooling::kAll) {
        // The task holds the rows tensor (shared, not copied) until it has written them.
        std::vector<int64_t> samples, counts, offsets;
        for (int64_t b = 0; b < end - begin; ++b) {
          samples.push_back(first_sample + order[begin + b]);
          counts.push_back(result.num_tokens[b]);
          offsets.push_back(result.token_offset[b]);
        }
        writer.enqueue([&file, rows, layer, hidden, samples, counts, offsets] {
          const float* values = rows.data_ptr<float>();
          for (size_t i = 0; i < samples.size(); ++i) {
            file.write_token_rows(layer, samples[i], counts[i], values + offsets[i] * hidden);
          }
        });
        continue;
      }
      PooledRows& target = pooled[next_pooled++];
      GPUJOB_CHECK(hidden == target.hidden, "layer ", layer, " ", model::pooling_name(pooling), ": captured rows have ",
                   hidden, " columns, the model's hidden size is ", target.hidden);
      for (int64_t b = 0; b < end - begin; ++b) {
        std::copy(data + b * hidden, data + (b + 1) * hidden,
                  target.rows.begin() + order[begin + b] * hidden);
      }
    }
  }
}

}  // namespace

void extract_chunk(const model::Decoder& decoder, const model::CaptureRequest& request,
                   const std::vector<std::vector<int64_t>>& sequences, int64_t first_sample,
                   int64_t chunk, int64_t& batch_size, io::ActivationFile& file, BackgroundWorker& writer) {
  const int64_t n = static_cast<int64_t>(sequences.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return sequences[a].size() > sequences[b].size(); });

  const int64_t hidden = decoder.config().hidden_size;
  std::vector<PooledRows> pooled;
  for (int64_t layer : request.layers) {
    for (auto pooling : request.positions) {
      if (pooling != model::Pooling::kAll) {
        pooled.push_back({static_cast<int>(layer), pooling, hidden, std::vector<float>(static_cast<size_t>(n * hidden))});
      }
    }
  }

  std::vector<int64_t> num_tokens(n);
  model::run_batches_with_oom_backoff(
      n, batch_size,
      [&](int64_t begin, int64_t end) {
        std::vector<std::vector<int64_t>> batch;
        for (int64_t i = begin; i < end; ++i) batch.push_back(sequences[order[i]]);
        const model::CaptureResult result = model::forward_capture(decoder, batch, request);
        take_batch(request, result, first_sample, order, begin, end, pooled, file, writer);
        for (int64_t b = 0; b < end - begin; ++b) num_tokens[order[begin + b]] = result.num_tokens[b];
      },
      [&](int64_t smaller) {
        // The rows of the failed batch were not taken: the forward pass comes before any of that.
        spdlog::warn("chunk {}: out of device memory, retrying with batch size {}", chunk, smaller);
      });
  // Last in the queue, after every `all` write of the chunk: the chunk is recorded as done only
  // once all of its rows are in the file.
  writer.enqueue([&file, pooled = std::move(pooled), num_tokens = std::move(num_tokens), first_sample, n, chunk] {
    for (const PooledRows& p : pooled) {
      file.write_sample_rows(p.layer, model::pooling_name(p.pooling), first_sample, n, p.rows.data());
    }
    file.write_num_tokens(first_sample, n, num_tokens.data());
    file.mark_chunk_done(chunk, first_sample, n);
  });
}

}  // namespace gpujob::jobs
