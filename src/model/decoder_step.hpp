// Decoder::Step, the per-call state of a Decoder forward, shared by decoder.cpp (the blocks and the
// uncached forward) and decoder_cached.cpp (the calls through a KV cache). Private to the model layer.
#pragma once

#include <ATen/ATen.h>

#include <map>

#include "gpujob/model/attention.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/kv_cache.hpp"
#include "gpujob/model/rope.hpp"

namespace gpujob::model {

// Per-call state shared by every block: positions, masks and rope tables (built once per
// distinct window / rope), and for cached calls where new keys and values go.
struct Decoder::Step {
  at::Tensor positions;               // int64 [batch, tokens]: rope positions and mask rows
  int64_t key_len = 0;                // keys each query row is masked against
  // Every row's queries at positions 0..tokens-1 and its keys from position 0 (key_len >= tokens:
  // a query never sees a key past its own position, so those past a row's tokens never count).
  bool plain_causal = false;
  std::map<int64_t, at::Tensor> masks;        // window (0: none) -> bool [batch, 1, tokens, key_len]
  std::map<int64_t, at::Tensor> biases;       // window -> the mask as the fused kernel takes it
  std::map<const void*, RopeTables> tables;   // inv_freq storage -> tables
  KvCache* cache = nullptr;
  at::Tensor read_slots;   // int64 [batch]: cache slot of each row
  int64_t first_slot = -1; // >= 0 when the rows are the consecutive slots first_slot, +1, ...
  at::Tensor write_src;    // int64 [valid tokens]: row * tokens + i of each new token; undefined: all rows
  at::Tensor write_dst;    // int64 [valid tokens]: slot * max_len + position
  at::Tensor cache_rows;   // int64 [batch * tokens]: write_dst of each token, -1 for padding (fused path)
  // Queries at some rows only (Decoder::forward's deepest_rows): int64 [batch * R] flat indices
  // b * tokens + i of those rows, and their positions [batch, R]. Undefined: a query per row.
  at::Tensor query_rows;
  at::Tensor query_positions;
  std::map<const void*, RopeTables> query_tables;

  // Undefined for plain causal attention (see attention()), which a window changes only when
  // it is shorter than the sequence.
  const at::Tensor& mask(int64_t window) {
    static const at::Tensor kCausal;
    if (plain_causal && (window == 0 || window >= key_len)) return kCausal;
    auto it = masks.find(window);
    if (it == masks.end()) it = masks.emplace(window, position_mask(queries_at(), key_len, window)).first;
    return it->second;
  }
  const at::Tensor& bias(int64_t window, int64_t heads, int64_t kv_heads, at::ScalarType dtype,
                         const AttentionParams& params, AttentionBackend backend) {
    auto it = biases.find(window);
    if (it == biases.end())
      it = biases.emplace(window, fused_attention_bias(mask(window), heads, kv_heads, dtype, params, backend)).first;
    return it->second;
  }
  const at::Tensor& queries_at() const { return query_positions.defined() ? query_positions : positions; }
  // t [batch, tokens, ...] at the query rows, [batch, R, ...]; t itself when every row queries.
  at::Tensor at_query_rows(const at::Tensor& t) const {
    if (!query_rows.defined()) return t;
    const int64_t batch = t.size(0);
    return t.flatten(0, 1).index_select(0, query_rows).unflatten(0, {batch, -1});
  }
  // Tables at every row's position (keys), and at the query rows' positions (queries).
  const RopeTables& rope(const at::Tensor& inv_freq, at::ScalarType dtype) {
    return rope_at(tables, positions, inv_freq, dtype);
  }
  const RopeTables& query_rope(const at::Tensor& inv_freq, at::ScalarType dtype) {
    if (!query_positions.defined()) return rope(inv_freq, dtype);
    return rope_at(query_tables, query_positions, inv_freq, dtype);
  }

 private:
  static const RopeTables& rope_at(std::map<const void*, RopeTables>& cache, const at::Tensor& at_positions,
                                   const at::Tensor& inv_freq, at::ScalarType dtype) {
    const void* key = inv_freq.data_ptr();
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, rope_tables(inv_freq, at_positions, dtype)).first;
    return it->second;
  }
};

}  // namespace gpujob::model
