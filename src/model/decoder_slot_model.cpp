#include "gpujob/model/decoder_slot_model.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "gpujob/model/decode_graphs.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::model {
namespace {

SlotDecode resolve(SlotDecode decode, const Decoder& decoder) {
  if (decode != SlotDecode::kAuto) return decode;
  return decoder.decode_step_capturable() ? SlotDecode::kCudaGraphs : SlotDecode::kPerCall;
}

}  // namespace

DecoderSlotModel::DecoderSlotModel(const Decoder& decoder, int64_t n_slots, int64_t max_len, SlotDecode decode)
    : decoder_(decoder), cache_(decoder.make_kv_cache(n_slots, max_len)), decode_(resolve(decode, decoder)) {
  if (decode_ != SlotDecode::kPerCall) {
    graphs_ = std::make_unique<DecodeGraphs>(decoder_, cache_, decode_ == SlotDecode::kCudaGraphs);
  }
}

DecoderSlotModel::~DecoderSlotModel() = default;

bool DecoderSlotModel::uses_cuda_graphs() const { return graphs_ != nullptr && graphs_->uses_graphs(); }

bool DecoderSlotModel::all_slot_step_applies(const std::vector<int64_t>& slots,
                                             const std::vector<std::vector<int64_t>>& new_tokens) const {
  if (graphs_ == nullptr || slots.size() != new_tokens.size() || 2 * slots.size() < static_cast<size_t>(n_slots())) {
    return false;
  }
  for (const auto& tokens : new_tokens) {
    if (tokens.size() != 1) return false;
  }
  // Every slot writes one position at its length, so none may be full (a full slot not in the
  // call has nowhere to put its throw-away token: that step goes per call).
  for (int64_t s = 0; s < n_slots(); ++s) {
    if (cache_.length(s) >= max_len()) return false;
  }
  return true;
}

at::Tensor DecoderSlotModel::forward(const std::vector<int64_t>& slots,
                                     const std::vector<std::vector<int64_t>>& new_tokens) {
  if (!all_slot_step_applies(slots, new_tokens)) return decoder_.forward_cached(cache_, slots, new_tokens);

  const int64_t S = n_slots();
  std::vector<int64_t> ids(S, 0), positions(S);
  for (int64_t s = 0; s < S; ++s) positions[s] = cache_.length(s);
  std::vector<char> in_call(S, 0);
  for (size_t i = 0; i < slots.size(); ++i) {
    const int64_t slot = slots[i], token = new_tokens[i][0];
    GPUJOB_CHECK(slot >= 0 && slot < S, "decode: slot ", slot, " is outside [0, ", S, ")");
    GPUJOB_CHECK(!in_call[slot], "decode: slot ", slot, " appears twice");
    decoder_.check_token(token);
    in_call[slot] = 1;
    ids[slot] = token;
  }
  const int64_t longest = *std::max_element(positions.begin(), positions.end()) + 1;
  const at::Tensor logits = graphs_->step(ids, positions, decoder_.attended_key_length(longest, max_len()));
  ++all_slot_steps_;
  for (int64_t slot : slots) cache_.set_length(slot, cache_.length(slot) + 1);
  // The rows of the call, in its order (a copy: a graph's output buffer is reused next step). Every
  // slot in slot order, as the generator's full steps are: a plain copy, which needs no index on
  // the device (its copy from the host would make the host wait for the step before queueing the
  // sampling, a gap on the GPU at every step).
  bool every_slot_in_order = static_cast<int64_t>(slots.size()) == S;
  for (size_t i = 0; i < slots.size() && every_slot_in_order; ++i) every_slot_in_order = slots[i] == static_cast<int64_t>(i);
  if (every_slot_in_order) return logits.clone();
  return logits.index_select(0, at::tensor(slots, at::kLong).to(logits.device()));
}

}  // namespace gpujob::model
