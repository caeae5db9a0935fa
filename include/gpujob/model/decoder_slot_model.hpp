// DecoderSlotModel: a Decoder and its KV cache as the generator's SlotModel.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "gpujob/model/generator.hpp"
#include "gpujob/model/kv_cache.hpp"

namespace gpujob::model {

class Decoder;
class DecodeGraphs;

// How a decode step (one new token per slot) that covers at least half of the slots runs.
enum class SlotDecode {
  kAuto,        // kCudaGraphs where Decoder::decode_step_capturable, else kPerCall
  kPerCall,     // Decoder::forward_cached over exactly the slots of the call
  kAllSlots,    // Decoder::decode_step over every slot (fixed shapes), run eagerly
  kCudaGraphs,  // kAllSlots replayed from CUDA graphs where they apply (DecodeGraphs)
};

// A Decoder with a KV cache allocated once, for the generator's whole life. Non-copyable.
// Prefill and small decode steps go through Decoder::forward_cached. A decode step of at least
// half of the slots runs, in the all-slots modes, over every slot at once: the slots not in the
// call take a throw-away token at their own length (a position never read before it is written),
// so a step's shapes depend only on the cache and the key-length bucket, which a CUDA graph needs.
// Decoding at most twice the rows needed costs little while decoding is bound by reading weights.
class DecoderSlotModel : public SlotModel {
 public:
  // The decoder is not owned and must outlive this object.
  DecoderSlotModel(const Decoder& decoder, int64_t n_slots, int64_t max_len, SlotDecode decode = SlotDecode::kAuto);
  ~DecoderSlotModel() override;
  DecoderSlotModel(const DecoderSlotModel&) = delete;
  DecoderSlotModel& operator=(const DecoderSlotModel&) = delete;

  int64_t n_slots() const override { return cache_.n_slots(); }
  int64_t max_len() const override { return cache_.max_len(); }
  void reset(int64_t slot) override { cache_.reset(slot); }
  at::Tensor forward(const std::vector<int64_t>& slots,
                     const std::vector<std::vector<int64_t>>& new_tokens) override;

  SlotDecode decode_mode() const { return decode_; }  // kAuto resolved
  bool uses_cuda_graphs() const;                      // false also after a failed capture
  int64_t all_slot_steps() const { return all_slot_steps_; }  // steps that ran over every slot

 private:
  bool all_slot_step_applies(const std::vector<int64_t>& slots,
                             const std::vector<std::vector<int64_t>>& new_tokens) const;

  const Decoder& decoder_;
  KvCache cache_;
  SlotDecode decode_;
  std::unique_ptr<DecodeGraphs> graphs_;  // the all-slots modes
  int64_t all_slot_steps_ = 0;
};

}  // namespace gpujob::model
