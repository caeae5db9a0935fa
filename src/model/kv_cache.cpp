// KvCache: one allocation per layer, per-slot lengths on the host.
#include "gpujob/model/kv_cache.hpp"

#include "gpujob/util/error.hpp"

namespace gpujob::model {

KvCache::KvCache(const KvCacheShape& shape, int64_t n_slots, int64_t max_len,
                 at::ScalarType dtype, at::Device device)
    : shape_(shape), n_slots_(n_slots), max_len_(max_len), dtype_(dtype), device_(device) {
  GPUJOB_CHECK(n_slots > 0 && max_len > 0, "KV cache: n_slots (", n_slots, ") and max_len (",
               max_len, ") must be positive");
  GPUJOB_CHECK(shape.num_layers > 0 && shape.n_kv_heads > 0 && shape.head_dim > 0,
               "KV cache: invalid shape (", shape.num_layers, " layers, ", shape.n_kv_heads,
               " kv heads, head_dim ", shape.head_dim, ")");
  const auto options = at::TensorOptions().dtype(dtype).device(device);
  keys_.reserve(shape.num_layers);
  values_.reserve(shape.num_layers);
  for (int64_t l = 0; l < shape.num_layers; ++l) {
    // Zeroed, not empty: rows past a slot's length are masked out, and zeros keep masked
    // products finite (garbage could hold inf/NaN, and 0 * NaN poisons a matmul).
    keys_.push_back(at::zeros({n_slots, max_len, shape.n_kv_heads, shape.head_dim}, options));
    values_.push_back(at::zeros({n_slots, max_len, shape.n_kv_heads, shape.head_dim}, options));
  }
  lengths_.assign(n_slots, 0);
}

int64_t KvCache::bytes_per_token(const KvCacheShape& shape, at::ScalarType dtype) {
  return 2 * shape.num_layers * shape.n_kv_heads * shape.head_dim *
         static_cast<int64_t>(c10::elementSize(dtype));
}

void KvCache::check_slot(int64_t slot) const {
  GPUJOB_CHECK(slot >= 0 && slot < n_slots_, "KV cache: slot ", slot, " out of range [0, ",
               n_slots_, ")");
}

int64_t KvCache::length(int64_t slot) const {
  check_slot(slot);
  return lengths_[slot];
}

void KvCache::reset(int64_t slot) {
  check_slot(slot);
  lengths_[slot] = 0;
}

void KvCache::reset_all() { lengths_.assign(n_slots_, 0); }

void KvCache::truncate(int64_t slot, int64_t length) {
  check_slot(slot);
  GPUJOB_CHECK(length >= 0 && length <= lengths_[slot], "KV cache: cannot truncate slot ", slot,
               " to ", length, " positions, it holds ", lengths_[slot]);
  lengths_[slot] = length;
}

void KvCache::set_length(int64_t slot, int64_t length) {
  check_slot(slot);
  GPUJOB_CHECK(length >= 0 && length <= max_len_, "KV cache: slot ", slot, " length ", length,
               " exceeds max_len ", max_len_);
  lengths_[slot] = length;
}

}  // namespace gpujob::model
