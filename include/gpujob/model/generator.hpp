// Generator: continuous-batching text generation over a fixed set of KV-cache slots.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gpujob/model/kv_cache.hpp"
#include "gpujob/model/sampler.hpp"
#include "gpujob/model/stop_conditions.hpp"

namespace gpujob::model {

class Decoder;

// What the generator needs from a model: a KV cache of n_slots sequences and a cached forward.
// Decoder plus its KvCache is the real one (DecoderSlotModel); tests use small fakes.
class SlotModel {
 public:
  virtual ~SlotModel() = default;
  virtual int64_t n_slots() const = 0;
  virtual int64_t max_len() const = 0;   // positions one slot holds, tokens
  virtual void reset(int64_t slot) = 0;  // empties a slot before it takes a new prompt
  // Appends new_tokens[i] to slot slots[i] and returns float32 logits [slots.size(), vocab] of each
  // slot's last new token (Decoder::forward_cached's contract).
  virtual at::Tensor forward(const std::vector<int64_t>& slots,
                             const std::vector<std::vector<int64_t>>& new_tokens) = 0;
};

// Positions a slot needs for a prompt: the last generated token is never fed back, so
// prompt + max_new_tokens - 1.
int64_t slot_positions_needed(int64_t prompt_tokens, int64_t max_new_tokens);

struct GenerationRequest {
  std::vector<int64_t> prompt_ids;  // prompt tokens, at least one
  uint64_t stream_key = 0;          // the prompt's random stream: stream_key_for_id(its data id)
};

struct Completion {
  std::vector<int64_t> ids;   // generated tokens (see StopChecker for what ends them)
  std::string text;           // decoded completion; empty without a DecodeFn
  FinishReason finish_reason = FinishReason::kNone;
};

struct GenerationProgress {
  int64_t tokens_generated = 0;  // over all prompts so far
  int64_t prompts_done = 0;
  int64_t prompts_total = 0;
};
using ProgressFn = std::function<void(const GenerationProgress&)>;

struct GeneratorOptions {
  SamplingParams sampling;
  StopConditions stop;
  DecodeFn decode;          // optional: completion text and stop strings need it
  ProgressFn progress;      // optional: called after every model call
  // Prompt tokens (padded: prompts x longest prompt) one prefill call may take; 0: no limit. Bounds
  // the activation memory of prefill when many slots refill at once. A longer prompt goes alone.
  // A prefill call that runs out of device memory is retried in halves (the limit stays halved);
  // a single prompt that does not fit is an error. A decode step that runs out of memory halves
  // the number of sequences decoded at once: the others restart later with identical output.
  int64_t max_prefill_tokens = 0;
};

// Continuous batching. Prompts wait in a queue; every free slot takes the next one and prefills it
// (all refilling slots in one call); every step then decodes one token for every active slot in one
// call. A finished sequence frees its slot at once and the next prompt takes it on the next step, so
// slots never wait for the rest of the batch.
//
// Reproducibility: a prompt's tokens depend only on its prompt, its stream key and the settings: the
// random draw of its k-th token is uniform_draw(seed, stream_key, k), whatever slot, batch or order it
// runs in. (Greedy and sampled outputs are then identical across batch sizes as long as the model's
// logits for a row do not depend on the other rows, which the decoder guarantees up to float rounding.)
//
// Static shapes: a decode step feeds one token to each active slot, in slot order; while the queue is
// not empty that is every slot, so steady-state decode calls all have the shape [n_slots, 1] (the
// shape a CUDA graph would capture), and only the tail of a run shrinks. The only device-to-host copy
// per step is the sampled tokens.
class Generator {
 public:
  Generator(SlotModel& model, GeneratorOptions options);

  // Generates one completion per request; results in request order. Throws when a prompt does not
  // fit a slot (naming the request index, its length and the slot size).
  std::vector<Completion> generate(const std::vector<GenerationRequest>& requests);

 private:
  SlotModel& model_;
  GeneratorOptions options_;
  Sampler sampler_;
  // Padded prompt tokens per prefill call: options.max_prefill_tokens (0: no limit) until a
  // prefill runs out of device memory, then half of what failed, for the generator's life.
  int64_t prefill_limit_ = 0;
  // Sequences decoded at once: every slot until a decode step runs out of device memory, then
  // half of what failed, for the generator's life.
  int64_t active_limit_ = 0;
};

}  // namespace gpujob::model
