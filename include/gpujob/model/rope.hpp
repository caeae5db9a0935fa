// Rotary position embeddings: inverse frequencies (default, linear, llama3) and their application.
#pragma once

#include "gpujob/model/model_config.hpp"

#include <ATen/ATen.h>

namespace gpujob::model {

// float32 [head_dim / 2] on CPU, computed as HF does (float32 arithmetic, same order).
at::Tensor rope_inverse_frequencies(const RopeSpec& rope, int64_t head_dim);

struct RopeTables {
  at::Tensor cos;  // [batch, tokens, head_dim] in the activation dtype
  at::Tensor sin;
};

// Tables for int64 positions [batch, tokens]; inv_freq on the positions' device.
RopeTables rope_tables(const at::Tensor& inv_freq, const at::Tensor& positions, at::ScalarType dtype);

// x: [batch, heads, tokens, head_dim]; returns x rotated (rotate-half convention).
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables);

}  // namespace gpujob::model
