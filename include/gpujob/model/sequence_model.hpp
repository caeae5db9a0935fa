// SequenceModel: a model that follows one token sequence with its KV cache (append, generate, roll back).
#pragma once

#include "gpujob/model/sampler.hpp"
#include "gpujob/model/stop_conditions.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace gpujob::model {

// One generate call: at most max_new_tokens tokens, ending early at the model's EOS ids or when
// the text of the tokens written by this call contains one of stop_strings.
struct GenerateRequest {
  int64_t max_new_tokens = 1;            // >= 1
  std::vector<std::string> stop_strings; // searched in this call's text only
  SamplingParams sampling;               // greedy when temperature <= 0
  uint64_t stream_key = 0;               // random stream of the sequence (see Sampler)
  int64_t first_step = 0;                // draw index of the first token; token i uses first_step + i
};

struct GenerateResult {
  std::vector<int64_t> tokens;                   // written by this call (EOS and stop tokens kept)
  FinishReason reason = FinishReason::kLength;   // kStop: EOS or a stop string; kLength: max_new_tokens
  bool eos = false;                              // the last token is an EOS id
};

// A model holding one sequence (prompt + everything written so far, by itself or by others).
// Several models can follow the same sequence: when one has written tokens, the others append()
// just those tokens, which only prefills them into their caches; a model never re-encodes what
// it already holds. Tokens a caller throws away are removed with truncate(), which rolls the KV
// cache back. Implementations may defer the prefill of appended tokens to the next generate().
class SequenceModel {
 public:
  virtual ~SequenceModel() = default;

  // Starts a new sequence holding `prompt` (at least one token).
  virtual void reset(const std::vector<int64_t>& prompt) = 0;
  // Appends tokens written elsewhere.
  virtual void append(const std::vector<int64_t>& tokens) = 0;
  // Writes up to request.max_new_tokens tokens after the sequence and appends them to it.
  virtual GenerateResult generate(const GenerateRequest& request) = 0;
  // Shortens the sequence to `length` tokens (>= 1, <= length()).
  virtual void truncate(int64_t length) = 0;
  // Tokens in the sequence.
  virtual int64_t length() const = 0;
};

}  // namespace gpujob::model
