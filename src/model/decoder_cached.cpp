// The decoder's calls through a KV cache: prefill and decode of chosen slots (forward_cached) and
// the fixed-shape step over every slot that a CUDA graph captures (decode_step).
#include "gpujob/model/decoder.hpp"

#include "decoder_step.hpp"
#include "gpujob/model/decoder_weights.hpp"
#include "gpujob/util/error.hpp"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <set>

namespace gpujob::model {

KvCacheShape Decoder::kv_cache_shape() const {
  return {config_.num_layers, weights_->local_kv_heads, config_.head_dim};
}

KvCache Decoder::make_kv_cache(int64_t n_slots, int64_t max_len) const {
  return KvCache(kv_cache_shape(), n_slots, max_len, options_.dtype, options_.device);
}

void Decoder::check_cache(const KvCache& cache, const char* caller) const {
  const KvCacheShape expected = kv_cache_shape();
  GPUJOB_CHECK(cache.shape().num_layers == expected.num_layers &&
                   cache.shape().n_kv_heads == expected.n_kv_heads &&
                   cache.shape().head_dim == expected.head_dim && cache.dtype() == options_.dtype &&
                   cache.device() == options_.device,
               caller, ": the KV cache was not made for this decoder (use make_kv_cache)");
}

at::Tensor Decoder::forward_cached(KvCache& cache, const std::vector<int64_t>& slots,
                                   const std::vector<std::vector<int64_t>>& new_tokens) const {
  at::NoGradGuard no_grad;
  GPUJOB_CHECK(!slots.empty() && slots.size() == new_tokens.size(), "forward_cached: ",
               slots.size(), " slots but ", new_tokens.size(), " token lists");
  check_cache(cache, "forward_cached");
  const int64_t B = static_cast<int64_t>(slots.size());
  int64_t T = 0;
  std::set<int64_t> seen;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t slot = slots[b];
    GPUJOB_CHECK(seen.insert(slot).second, "forward_cached: slot ", slot, " appears twice");
    const int64_t n = static_cast<int64_t>(new_tokens[b].size());
    GPUJOB_CHECK(n > 0, "forward_cached: no new tokens for slot ", slot);
    GPUJOB_CHECK(cache.length(slot) + n <= cache.max_len(), "forward_cached: slot ", slot, " holds ",
                 cache.length(slot), " positions, ", n, " more exceed max_len ", cache.max_len());
    T = std::max(T, n);
  }

  // Host-side index tables, moved to the device once per call.
  std::vector<int64_t> ids(B * T, 0), positions(B * T), src, dst, cache_rows(B * T, -1);
  int64_t key_len = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = cache.length(slots[b]);
    const int64_t n = static_cast<int64_t>(new_tokens[b].size());
    for (int64_t i = 0; i < T; ++i) {
      // Padding rows repeat the last real position, so their mask rows are never empty.
      positions[b * T + i] = start + std::min(i, n - 1);
      if (i < n) {
        check_token(new_tokens[b][i]);
        ids[b * T + i] = new_tokens[b][i];
        src.push_back(b * T + i);
        dst.push_back(slots[b] * cache.max_len() + start + i);
        cache_rows[b * T + i] = dst.back();
      }
    }
    key_len = std::max(key_len, start + n);
  }
  const auto on_device = [&](const std::vector<int64_t>& v, std::vector<int64_t> shape) {
    return at::tensor(v, at::kLong).view(shape).to(options_.device);
  };
  Step step;
  step.positions = on_device(positions, {B, T});
  step.key_len = attended_key_length(key_len, cache.max_len());
  step.cache = &cache;
  step.read_slots = on_device(slots, {B});
  bool consecutive = true;
  for (int64_t b = 1; b < B; ++b) consecutive = consecutive && slots[b] == slots[0] + b;
  if (consecutive) step.first_slot = slots[0];
  step.write_src = on_device(src, {static_cast<int64_t>(src.size())});
  step.write_dst = on_device(dst, {static_cast<int64_t>(dst.size())});
  step.cache_rows = on_device(cache_rows, {B * T});
  // A prefill of fresh slots needs no mask: a real token at position i sees the keys 0..i, all
  // written by this call, and padding rows (discarded) see what they see. The fused attention
  // then skips the masked half of the scores and folds no query heads into rows (a copy).
  step.plain_causal = std::all_of(slots.begin(), slots.end(), [&](int64_t s) { return cache.length(s) == 0; });

  Residual r{embed(on_device(ids, {B, T})), {}, {}};
  for (int64_t l = 0; l < config_.num_layers; ++l) r = block(l, r, step);
  std::vector<int64_t> last(B);
  for (int64_t b = 0; b < B; ++b) last[b] = b * T + static_cast<int64_t>(new_tokens[b].size()) - 1;
  const at::Tensor last_rows = on_device(last, {B});
  const auto at_last = [&](const at::Tensor& t) {
    return t.defined() ? t.reshape({B * T, -1}).index_select(0, last_rows) : t;
  };
  at::Tensor logits = lm_head(add_rms_norm(at_last(r.h), at_last(pending_delta(r)), weights_->final_norm).second);
  for (int64_t b = 0; b < B; ++b)
    cache.set_length(slots[b], cache.length(slots[b]) + static_cast<int64_t>(new_tokens[b].size()));
  return logits;
}

at::Tensor Decoder::decode_step(KvCache& cache, const at::Tensor& ids, const at::Tensor& positions,
                                int64_t key_len) const {
  at::NoGradGuard no_grad;
  check_cache(cache, "decode_step");
  const int64_t S = cache.n_slots();
  GPUJOB_CHECK(ids.dim() == 1 && ids.size(0) == S && positions.dim() == 1 && positions.size(0) == S,
               "decode_step: ids and positions must be [", S, "] (one per cache slot)");
  GPUJOB_CHECK(key_len >= 1 && key_len <= cache.max_len(), "decode_step: key_len ", key_len,
               " is outside [1, ", cache.max_len(), "]");
  Step step;
  step.positions = positions.view({S, 1});
  step.key_len = key_len;
  step.cache = &cache;
  step.first_slot = 0;  // every slot, in order: the cache is read in place
  // write_src stays undefined (every row is new); each slot writes at slot * max_len + position.
  step.write_dst = at::arange(S, positions.options()) * cache.max_len() + positions;
  step.cache_rows = step.write_dst;
  Residual r{embed(ids.view({S, 1})), {}, {}};
  for (int64_t l = 0; l < config_.num_layers; ++l) r = block(l, r, step);
  return lm_head(add_pending_rms_norm(r, weights_->final_norm).second.select(1, 0));
}

}  // namespace gpujob::model
