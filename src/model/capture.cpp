// Layer capture and pooling.
#include "gpujob/model/capture.hpp"

#include "gpujob/model/device.hpp"

#include "gpujob/util/error.hpp"

#include <ATen/core/grad_mode.h>

#include <algorithm>

namespace gpujob::model {

Pooling parse_pooling(const std::string& name) {
  if (name == "last") return Pooling::kLast;
  if (name == "first") return Pooling::kFirst;
  if (name == "middle") return Pooling::kMiddle;
  if (name == "mean") return Pooling::kMean;
  if (name == "all") return Pooling::kAll;
  fail("position \"", name, "\" is not one of last, first, middle, mean, all");
}

const char* pooling_name(Pooling pooling) {
  switch (pooling) {
    case Pooling::kLast: return "last";
    case Pooling::kFirst: return "first";
    case Pooling::kMiddle: return "middle";
    case Pooling::kMean: return "mean";
    case Pooling::kAll: return "all";
  }
  return "?";
}

namespace {

// The token a one-row position takes from a sequence of n tokens.
int64_t row_of(Pooling pooling, int64_t n) {
  switch (pooling) {
    case Pooling::kLast: return n - 1;
    case Pooling::kFirst: return 0;
    case Pooling::kMiddle: return (n - 1) / 2;
    case Pooling::kMean:
    case Pooling::kAll: break;
  }
  fail("position ", pooling_name(pooling), " is not one row per sequence");
}

bool one_row(Pooling pooling) {
  return pooling == Pooling::kLast || pooling == Pooling::kFirst || pooling == Pooling::kMiddle;
}

}  // namespace

CaptureResult forward_capture(const Decoder& decoder,
                              const std::vector<std::vector<int64_t>>& sequences,
                              const CaptureRequest& request) {
  at::NoGradGuard no_grad;
  const auto& config = decoder.config();
  GPUJOB_CHECK(request.out_dtype == at::kFloat || request.out_dtype == at::kHalf,
               "capture: output dtype must be float32 or float16");
  ForwardRequest forward_request;
  for (int64_t layer : request.layers) {
    GPUJOB_CHECK(layer >= 0 && layer < config.num_layers, config.source, ": layer ", layer,
                 " does not exist (the model has layers 0..", config.num_layers - 1, ")");
    forward_request.hidden_indices.push_back(layer + 1);
  }
  CaptureResult result;
  int64_t offset = 0;
  for (const auto& s : sequences) {
    result.num_tokens.push_back(static_cast<int64_t>(s.size()));
    result.token_offset.push_back(offset);
    offset += static_cast<int64_t>(s.size());
  }
  if (sequences.empty()) return result;
  const TokenBatch batch = TokenBatch::from_sequences(sequences);
  // When every position is one row per sequence (last, first, middle), the deepest layer is needed
  // only at those rows: its block computes queries, attention output and MLP only there.
  const auto& indices = forward_request.hidden_indices;
  const int64_t deepest = indices.empty() ? -1 : *std::max_element(indices.begin(), indices.end());
  const bool rows_only = !request.positions.empty() && deepest > 0 &&
      std::all_of(request.positions.begin(), request.positions.end(), one_row);
  if (rows_only) {
    for (int64_t n : batch.lengths) {
      std::vector<int64_t> rows;
      for (Pooling p : request.positions) rows.push_back(row_of(p, n));
      forward_request.deepest_rows.push_back(std::move(rows));
    }
  }
  ForwardOutput out = decoder.forward(batch, forward_request);

  // Mask of the tokens that count for kMean: real (not padding) and not special.
  at::Tensor counted = at::zeros(batch.input_ids.sizes(), at::kFloat);
  {
    auto ids = batch.input_ids.accessor<int64_t, 2>();
    auto acc = counted.accessor<float, 2>();
    const auto& special = request.special_token_ids;
    for (int64_t b = 0; b < static_cast<int64_t>(sequences.size()); ++b) {
      int64_t kept = 0;
      for (int64_t i = 0; i < batch.lengths[b]; ++i) {
        const bool is_special = std::find(special.begin(), special.end(), ids[b][i]) != special.end();
        acc[b][i] = is_special ? 0.f : 1.f;
        kept += is_special ? 0 : 1;
      }
      if (kept == 0)  // only special tokens: average them all rather than return nothing
        for (int64_t i = 0; i < batch.lengths[b]; ++i) acc[b][i] = 1.f;
    }
  }
  const int64_t B = static_cast<int64_t>(sequences.size());
  auto pick = [&](Pooling pooling) {
    std::vector<int64_t> idx(B);
    for (int64_t b = 0; b < B; ++b) idx[b] = b * batch.input_ids.size(1) + row_of(pooling, batch.lengths[b]);
    return at::tensor(idx, at::kLong);
  };
  const at::Tensor last = pick(Pooling::kLast), first = pick(Pooling::kFirst), middle = pick(Pooling::kMiddle);
  std::vector<int64_t> all_idx;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < batch.lengths[b]; ++i) all_idx.push_back(b * batch.input_ids.size(1) + i);
  const at::Tensor all = at::tensor(all_idx, at::kLong);

  // Pooling runs where the hidden states are, so only the rows asked for cross to the host (on a
  // GPU: B rows per pooled position instead of the whole [B, T, hidden] state). Selected rows are
  // converted to float32 after selection (the same values); the mean sums in float32.
  const at::Device device = out.hidden.empty() ? at::Device(at::kCPU) : out.hidden.front().device();
  const auto on_device = [&](const at::Tensor& t) { return t.to(device); };
  const at::Tensor last_d = on_device(last), first_d = on_device(first), middle_d = on_device(middle),
                   all_d = on_device(all), weights_d = on_device(counted).unsqueeze(-1);
  for (size_t k = 0; k < out.hidden.size(); ++k) {
    const at::Tensor& hidden = out.hidden[k];
    at::Tensor flat = hidden.reshape({-1, hidden.size(-1)});
    std::vector<at::Tensor> per_position;
    for (size_t pi = 0; pi < request.positions.size(); ++pi) {
      const Pooling p = request.positions[pi];
      at::Tensor pooled;
      if (rows_only && indices[k] == deepest) {
        pooled = hidden.select(1, static_cast<int64_t>(pi));  // the forward kept just these rows, in this order
      } else {
        switch (p) {
          case Pooling::kLast: pooled = flat.index_select(0, last_d); break;
          case Pooling::kFirst: pooled = flat.index_select(0, first_d); break;
          case Pooling::kMiddle: pooled = flat.index_select(0, middle_d); break;
          case Pooling::kAll: pooled = flat.index_select(0, all_d); break;
          case Pooling::kMean: pooled = (hidden.to(at::kFloat) * weights_d).sum(1) / weights_d.sum(1); break;
        }
      }
      per_position.push_back(copy_to_host_async(pooled.to(at::kFloat).to(request.out_dtype)));
    }
    result.activations.push_back(std::move(per_position));
  }
  wait_for_device(device);  // the host copies above were only issued
  return result;
}

}  // namespace gpujob::model
