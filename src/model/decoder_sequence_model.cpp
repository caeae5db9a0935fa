// DecoderSequenceModel: lazy prefill, sampled decode steps and cache rollback on one KV cache slot.
#include "gpujob/model/decoder_sequence_model.hpp"

#include "gpujob/util/error.hpp"

#include <ATen/core/grad_mode.h>

#include <algorithm>

namespace gpujob::model {

DecoderSequenceModel::DecoderSequenceModel(const Decoder& decoder, int64_t max_len, std::vector<int64_t> eos_token_ids,
                                           DecodeFn decode)
    : decoder_(decoder),
      cache_(decoder.make_kv_cache(1, max_len)),
      eos_token_ids_(std::move(eos_token_ids)),
      decode_(std::move(decode)) {}

void DecoderSequenceModel::check_fits(int64_t length) const {
  GPUJOB_CHECK(length <= cache_.max_len(), "sequence model: ", length, " tokens exceed the KV cache's ",
               cache_.max_len(), " positions (raise generation.max_model_len)");
}

void DecoderSequenceModel::reset(const std::vector<int64_t>& prompt) {
  GPUJOB_CHECK(!prompt.empty(), "sequence model: empty prompt");
  check_fits(static_cast<int64_t>(prompt.size()));
  cache_.reset(0);
  sequence_ = prompt;
}

void DecoderSequenceModel::append(const std::vector<int64_t>& tokens) {
  check_fits(length() + static_cast<int64_t>(tokens.size()));
  sequence_.insert(sequence_.end(), tokens.begin(), tokens.end());
}

void DecoderSequenceModel::truncate(int64_t new_length) {
  GPUJOB_CHECK(new_length >= 1 && new_length <= length(), "sequence model: cannot truncate ", length(),
               " tokens to ", new_length);
  sequence_.resize(static_cast<size_t>(new_length));
  if (cache_.length(0) > new_length) cache_.truncate(0, new_length);
}

at::Tensor DecoderSequenceModel::next_logits() {
  // The logits of the last token need that token fed; if the cache already holds it (after a
  // truncate to a cached position), it is fed again.
  if (cache_.length(0) >= length()) cache_.truncate(0, length() - 1);
  std::vector<int64_t> pending(sequence_.begin() + cache_.length(0), sequence_.end());
  return decoder_.forward_cached(cache_, {0}, {pending});
}

int64_t DecoderSequenceModel::agree(int64_t token) const {
  Collectives* c = decoder_.options().collectives;
  if (c == nullptr || c->size() == 1) return token;
  at::Tensor t = at::full({1}, c->rank() == 0 ? token : int64_t{0}, at::TensorOptions(at::kLong).device(decoder_.options().device));
  c->all_reduce_sum(t);
  return t.item<int64_t>();
}

GenerateResult DecoderSequenceModel::generate(const GenerateRequest& request) {
  GPUJOB_CHECK(!sequence_.empty(), "sequence model: generate before reset");
  GPUJOB_CHECK(request.stop_strings.empty() || static_cast<bool>(decode_),
               "sequence model: stop strings need a tokenizer decode function");
  check_fits(length() + request.max_new_tokens);
  at::NoGradGuard no_grad;
  StopConditions stop;
  stop.eos_token_ids = eos_token_ids_;
  stop.stop_strings = request.stop_strings;
  stop.max_new_tokens = request.max_new_tokens;
  StopChecker checker(stop, request.stop_strings.empty() ? DecodeFn{} : decode_);
  Sampler sampler(request.sampling);
  GenerateResult out;
  for (int64_t i = 0; !checker.finished(); ++i) {
    at::Tensor logits = next_logits();
    const int64_t token = agree(sampler.sample(logits, {request.stream_key}, {request.first_step + i}).item<int64_t>());
    sequence_.push_back(token);
    out.tokens.push_back(token);
    out.reason = checker.append(token);
  }
  out.eos = std::find(eos_token_ids_.begin(), eos_token_ids_.end(), out.tokens.back()) != eos_token_ids_.end();
  return out;
}

}  // namespace gpujob::model
