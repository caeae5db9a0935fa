#include "gpujob/model/sampler.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "gpujob/util/error.hpp"

namespace gpujob::model {

namespace {

// splitmix64's finalizer: a bijection on 64 bits with full avalanche, so chaining it over the keys
// gives independent-looking streams for neighbouring seeds, prompts and steps.
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

void validate_sampling(const SamplingParams& p) {
  GPUJOB_CHECK(std::isfinite(p.temperature), "generation.temperature: expected a finite number, found ",
               p.temperature);
  GPUJOB_CHECK(p.top_k >= 0, "generation.top_k: expected >= 0 (0 turns it off), found ", p.top_k);
  GPUJOB_CHECK(p.top_p > 0.0 && p.top_p <= 1.0, "generation.top_p: expected a value in (0, 1], found ",
               p.top_p);
  GPUJOB_CHECK(p.min_p >= 0.0 && p.min_p <= 1.0, "generation.min_p: expected a value in [0, 1], found ",
               p.min_p);
}

double uniform_draw(uint64_t seed, uint64_t stream_key, uint64_t step) {
  uint64_t h = mix64(seed);
  h = mix64(h ^ stream_key);
  h = mix64(h ^ step);
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

uint64_t stream_key_for_id(std::string_view prompt_id) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : prompt_id) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

at::Tensor apply_sampling_filters(const at::Tensor& logits, const SamplingParams& p) {
  GPUJOB_CHECK(logits.dim() == 2, "sampler: expected logits [n, vocab], found ", logits.dim(),
               " dimensions");
  GPUJOB_CHECK(logits.scalar_type() == at::kFloat, "sampler: expected float32 logits, found ",
               logits.scalar_type());
  if (p.greedy()) return logits;
  const double neg_inf = -std::numeric_limits<double>::infinity();
  const int64_t vocab = logits.size(1);

  at::Tensor scores = p.temperature != 1.0 ? logits / p.temperature : logits.clone();

  if (p.top_k > 0 && p.top_k < vocab) {
    // The k-th largest value is the threshold; ties with it stay, as in HF's TopKLogitsWarper.
    at::Tensor kth = std::get<0>(scores.topk(p.top_k, /*dim=*/1)).narrow(1, p.top_k - 1, 1);
    scores.masked_fill_(scores < kth, neg_inf);
  }

  if (p.top_p < 1.0) {
    // Ascending sort: a token goes when the mass of it and every smaller token is <= 1 - top_p; the
    // largest token always stays.
    auto sorted = scores.sort(/*dim=*/1, /*descending=*/false);
    at::Tensor sorted_scores = std::get<0>(sorted);
    at::Tensor order = std::get<1>(sorted);
    at::Tensor tail_mass = sorted_scores.softmax(1).cumsum(1);
    at::Tensor remove_sorted = tail_mass <= (1.0 - p.top_p);
    remove_sorted.narrow(1, vocab - 1, 1).fill_(false);
    at::Tensor remove = at::zeros_like(remove_sorted).scatter_(1, order, remove_sorted);
    scores.masked_fill_(remove, neg_inf);
  }

  if (p.min_p > 0.0) {
    // Relative to the top probability, so the top token always stays (min_p <= 1).
    at::Tensor probs = scores.softmax(1);
    at::Tensor top = std::get<0>(probs.max(1, /*keepdim=*/true));
    scores.masked_fill_(probs < top * p.min_p, neg_inf);
  }
  return scores;
}

at::Tensor draw_from_filtered(const at::Tensor& filtered_logits, const at::Tensor& uniforms) {
  const int64_t n = filtered_logits.size(0);
  GPUJOB_CHECK(uniforms.dim() == 1 && uniforms.size(0) == n, "sampler: expected ", n,
               " uniforms, found shape ", uniforms.sizes());
  // float64 cumulative sums so that vocabularies of 250k tokens keep the tail's resolution.
  at::Tensor cdf = filtered_logits.softmax(1).to(at::kDouble).cumsum(1);
  at::Tensor total = cdf.narrow(1, cdf.size(1) - 1, 1);
  at::Tensor target = uniforms.to(cdf.device(), at::kDouble).unsqueeze(1) * total;
  at::Tensor index = at::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true);
  // u * total can round up to total; the last token of positive probability is the first index whose
  // cumulative sum reaches the total.
  at::Tensor last_positive = (cdf < total).sum(1, /*keepdim=*/true);
  return at::minimum(index, last_positive).squeeze(1);
}

Sampler::Sampler(const SamplingParams& params) : params_(params) { validate_sampling(params_); }

at::Tensor Sampler::sample(const at::Tensor& logits, const std::vector<uint64_t>& stream_keys,
                           const std::vector<int64_t>& steps) const {
  GPUJOB_CHECK(logits.dim() == 2, "sampler: expected logits [n, vocab], found ", logits.dim(),
               " dimensions");
  const int64_t n = logits.size(0);
  GPUJOB_CHECK(static_cast<int64_t>(stream_keys.size()) == n && static_cast<int64_t>(steps.size()) == n,
               "sampler: ", n, " logit rows but ", stream_keys.size(), " stream keys and ", steps.size(),
               " steps");
  if (params_.greedy()) return logits.argmax(1);
  // Pinned for a GPU: a copy from pageable memory would make the host wait for the GPU's queue
  // (the decode step) before it could queue the sampling.
  const bool pinned = logits.is_cuda();
  at::Tensor uniforms = at::empty({n}, at::TensorOptions().dtype(at::kDouble).pinned_memory(pinned));
  double* u = uniforms.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    u[i] = uniform_draw(params_.seed, stream_keys[i], static_cast<uint64_t>(steps[i]));
  }
  if (pinned) uniforms = uniforms.to(logits.device(), at::kDouble, /*non_blocking=*/true);
  return draw_from_filtered(apply_sampling_filters(logits, params_), uniforms);
}

}  // namespace gpujob::model
