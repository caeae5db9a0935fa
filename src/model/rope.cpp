// Rotary embeddings, matching HF's float32 computation so that float32 results agree to rounding.
#include "gpujob/model/rope.hpp"

#include "gpujob/util/error.hpp"

#include <cmath>

namespace gpujob::model {

at::Tensor rope_inverse_frequencies(const RopeSpec& rope, int64_t head_dim) {
  GPUJOB_CHECK(head_dim % 2 == 0, "rope: head_dim ", head_dim, " must be even");
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor exponent = at::arange(0, head_dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) /
                        static_cast<double>(head_dim);
  at::Tensor inv_freq = 1.0 / at::pow(at::scalar_tensor(rope.theta, f32), exponent);
  switch (rope.type) {
    case RopeType::kDefault:
      return inv_freq;
    case RopeType::kLinear:
      return inv_freq / rope.factor;
    case RopeType::kLlama3: {
      // Long wavelengths are divided by the factor, short ones kept, and the band between the
      // two thresholds interpolated smoothly (Llama 3.1's context extension).
      const double old_len = static_cast<double>(rope.original_max_position);
      const double low_freq_wavelen = old_len / rope.low_freq_factor;
      const double high_freq_wavelen = old_len / rope.high_freq_factor;
      at::Tensor wavelen = 2 * M_PI / inv_freq;
      at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / rope.factor, inv_freq);
      at::Tensor smooth = (old_len / wavelen - rope.low_freq_factor) /
                          (rope.high_freq_factor - rope.low_freq_factor);
      at::Tensor smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled;
      at::Tensor medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
      return at::where(medium, smoothed, scaled);
    }
  }
  return inv_freq;
}

RopeTables rope_tables(const at::Tensor& inv_freq, const at::Tensor& positions, at::ScalarType dtype) {
  // freqs[b, t, i] = position[b, t] * inv_freq[i], one float32 product each, as HF's matmul.
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq.view({1, 1, -1});
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor x1 = x.narrow(-1, 0, half);
  at::Tensor x2 = x.narrow(-1, half, half);
  at::Tensor rotated = at::cat({-x2, x1}, -1);
  at::Tensor cos = tables.cos.unsqueeze(1);  // broadcast over heads
  at::Tensor sin = tables.sin.unsqueeze(1);
  return x * cos + rotated * sin;
}

}  // namespace gpujob::model
