// DecoderSequenceModel: a SequenceModel on one Decoder (or one tensor-parallel shard of it) and one KV cache slot.
#pragma once

#include "gpujob/model/decoder.hpp"
#include "gpujob/model/sequence_model.hpp"

#include <cstdint>
#include <vector>

namespace gpujob::model {

// Keeps the sequence's tokens on the host and their keys/values in a one-slot KvCache. Appended
// tokens are prefilled lazily, together, at the next generate(); truncate() rolls the cache back.
// The cache usually lags the sequence by the last sampled token, which is fed at the next step.
//
// With a tensor-parallel decoder every shard runs this same object: shard 0's sampled token is
// shared through the decoder's collectives each step (an all-reduce of one integer), so all
// shards write the same tokens even if their logits differed in the last bit.
class DecoderSequenceModel final : public SequenceModel {
 public:
  // `decode` is needed only for requests with stop strings; max_len bounds prompt + output.
  DecoderSequenceModel(const Decoder& decoder, int64_t max_len, std::vector<int64_t> eos_token_ids,
                       DecodeFn decode = {});
  DecoderSequenceModel(const DecoderSequenceModel&) = delete;
  DecoderSequenceModel& operator=(const DecoderSequenceModel&) = delete;

  void reset(const std::vector<int64_t>& prompt) override;
  void append(const std::vector<int64_t>& tokens) override;
  GenerateResult generate(const GenerateRequest& request) override;
  void truncate(int64_t length) override;
  int64_t length() const override { return static_cast<int64_t>(sequence_.size()); }

  int64_t cached_length() const { return cache_.length(0); }  // positions held in the KV cache
  const std::vector<int64_t>& sequence() const { return sequence_; }
  const Decoder& decoder() const { return decoder_; }

 private:
  at::Tensor next_logits();  // feeds what the cache lacks; float32 [1, vocab] of the last token
  int64_t agree(int64_t token) const;
  void check_fits(int64_t length) const;

  const Decoder& decoder_;
  KvCache cache_;
  std::vector<int64_t> sequence_;
  std::vector<int64_t> eos_token_ids_;
  DecodeFn decode_;
};

}  // namespace gpujob::model
