// Next-token sampling: greedy, temperature, top-k, top-p, min-p, with counter-based random streams.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace gpujob::model {

// Sampling settings shared by every prompt of a run. Filters apply in the order of HF transformers'
// `generate` (its logits warpers): temperature, then top-k, then top-p, then min-p, each keeping at
// least one token; the token is then drawn from the softmax of what remains.
struct SamplingParams {
  double temperature = 0.0;  // > 0: logits are divided by it before the filters; <= 0: greedy (argmax)
  int64_t top_k = 0;         // keep tokens whose logit is >= the k-th largest (ties kept); 0: off
  double top_p = 1.0;        // keep the smallest top set with probability >= top_p; in (0, 1], 1: off
  double min_p = 0.0;        // drop tokens whose probability is < min_p * the top probability; in [0, 1], 0: off
  uint64_t seed = 0;         // run seed: with the prompt's stream key it fixes every random draw

  bool greedy() const { return temperature <= 0.0; }
};

// Throws a one-line gpujob::Error naming the offending `generation.*` key when a value is out of range.
void validate_sampling(const SamplingParams& params);

// The random stream of one prompt is a pure function of (seed, stream key, step): draw `step` of
// prompt `stream_key` is uniform_draw(seed, stream_key, step). Nothing depends on which slot, batch,
// rank or chunk order the prompt is processed in, so sampled completions do not either.
// Returns a double in [0, 1) with 53 random bits (splitmix64 finalizer chained over the three keys).
double uniform_draw(uint64_t seed, uint64_t stream_key, uint64_t step);

// The stream key of a prompt from its id as written in the data file (64-bit FNV-1a of the bytes),
// so it survives reordering, filtering and sharding of the data.
uint64_t stream_key_for_id(std::string_view prompt_id);

// Applies temperature, top-k, top-p and min-p (HF order and semantics, min_tokens_to_keep = 1) to
// float32 logits [n, vocab]; removed tokens become -inf. Returns a new tensor; greedy params return
// the logits unchanged (greedy takes the argmax of the raw logits, as HF does without do_sample).
at::Tensor apply_sampling_filters(const at::Tensor& logits, const SamplingParams& params);

// Draws one token per row from softmax(filtered_logits) by inverse CDF: row i takes the first token
// whose cumulative probability exceeds uniforms[i] * total. uniforms: float64 [n] in [0, 1) on any
// device. Returns int64 [n] on the logits' device. Tokens of zero probability are never drawn.
at::Tensor draw_from_filtered(const at::Tensor& filtered_logits, const at::Tensor& uniforms);

// Samples next tokens for a batch of rows, each with its own random stream.
class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  const SamplingParams& params() const { return params_; }

  // logits: float32 [n, vocab]; stream_keys[i], steps[i]: row i's prompt stream and how many tokens
  // that prompt has generated so far. Returns int64 [n] on the logits' device. The only host work is
  // computing n uniforms; everything on [n, vocab] stays on the device.
  at::Tensor sample(const at::Tensor& logits, const std::vector<uint64_t>& stream_keys,
                    const std::vector<int64_t>& steps) const;

 private:
  SamplingParams params_;
};

}  // namespace gpujob::model
