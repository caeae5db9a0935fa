// KvCache: keys and values of every layer for a fixed set of generation slots, allocated once.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace gpujob::model {

// Shape of one layer's cache entry, as the decoder (or one tensor-parallel shard of it) needs.
struct KvCacheShape {
  int64_t num_layers = 0;   // decoder blocks
  int64_t n_kv_heads = 0;   // key/value heads held by this shard
  int64_t head_dim = 0;     // features per head
};

// Storage for n_slots sequences of up to max_len tokens. Each layer holds keys and values as
// [n_slots, max_len, n_kv_heads, head_dim] in the model's dtype on its device; the buffers are
// allocated once and never reallocated, so decode steps see static shapes (CUDA graphs).
// Sliding-window layers keep every position too: the window is applied by the attention mask,
// which keeps them exact past the window and makes truncate() possible on every layer.
// A slot's length is the number of positions written; Decoder::forward_cached appends at it.
// Non-copyable (it owns the large buffers); movable.
class KvCache {
 public:
  KvCache(const KvCacheShape& shape, int64_t n_slots, int64_t max_len, at::ScalarType dtype,
          at::Device device);
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;
  KvCache(KvCache&&) = default;
  KvCache& operator=(KvCache&&) = default;

  // Bytes one token takes over all layers (keys and values), for sizing from a memory budget.
  static int64_t bytes_per_token(const KvCacheShape& shape, at::ScalarType dtype);

  int64_t n_slots() const { return n_slots_; }
  int64_t max_len() const { return max_len_; }
  const KvCacheShape& shape() const { return shape_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }

  int64_t length(int64_t slot) const;            // positions written in `slot`
  void reset(int64_t slot);                      // empties a slot (its next prompt starts at 0)
  void reset_all();                              // empties every slot
  void truncate(int64_t slot, int64_t length);   // rolls a slot back to `length` <= length(slot)

  // Raw buffers, [n_slots, max_len, n_kv_heads, head_dim]; used by the decoder.
  at::Tensor& keys(int64_t layer) { return keys_.at(layer); }
  at::Tensor& values(int64_t layer) { return values_.at(layer); }
  // Marks `slot` as holding `length` positions (after the decoder wrote them).
  void set_length(int64_t slot, int64_t length);

 private:
  void check_slot(int64_t slot) const;

  KvCacheShape shape_;
  int64_t n_slots_ = 0;
  int64_t max_len_ = 0;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::kCPU;
  std::vector<at::Tensor> keys_;     // one per layer
  std::vector<at::Tensor> values_;   // one per layer
  std::vector<int64_t> lengths_;     // per slot, host side
};

}  // namespace gpujob::model
