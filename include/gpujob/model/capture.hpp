// Layer capture: one forward pass, any set of layers, pooled per sequence (last, first, middle, mean, all).
#pragma once

#include "gpujob/model/decoder.hpp"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace gpujob::model {

enum class Pooling {
  kLast,    // the sequence's last token
  kFirst,   // its first token
  kMiddle,  // token (n - 1) / 2
  kMean,    // mean over tokens whose id is not special (over all tokens if every one is)
  kAll,     // every token, rows concatenated over sequences
};

Pooling parse_pooling(const std::string& name);  // "last", "first", "middle", "mean", "all"
const char* pooling_name(Pooling pooling);

struct CaptureRequest {
  // Decoder layers L in [0, num_layers): HF's hidden_states[L + 1]; the last layer is after the
  // final norm, as HF reports it. The forward stops after the deepest one.
  std::vector<int64_t> layers;
  std::vector<Pooling> positions;
  std::vector<int64_t> special_token_ids;  // excluded from kMean
  at::ScalarType out_dtype = at::kFloat;   // float32 or float16
};

struct CaptureResult {
  // activations[i][j]: layer request.layers[i], pooling request.positions[j]; CPU tensors
  // [sequences, hidden], or [total tokens, hidden] for kAll.
  std::vector<std::vector<at::Tensor>> activations;
  std::vector<int64_t> num_tokens;    // per sequence
  std::vector<int64_t> token_offset;  // per sequence: its first row in the kAll tensors
};

// Runs `sequences` as one right-padded batch and pools the requested layers.
CaptureResult forward_capture(const Decoder& decoder,
                              const std::vector<std::vector<int64_t>>& sequences,
                              const CaptureRequest& request);

}  // namespace gpujob::model
