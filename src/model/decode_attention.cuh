// Launcher of the decode attention kernels (decode_attention.cu): one new query token per
// sequence against the keys and values in the KV cache, split over the keys so that a batch of
// one still fills the GPU. Plain pointers and sizes, no libtorch header.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "fused_kernels.cuh"

namespace gpujob::model::kernels {

struct DecodeAttention {
  const void* q = nullptr;             // [batch, heads, dim]: one query per row
  const void* k_cache = nullptr;       // [slots, max_len, kv_heads, dim]
  const void* v_cache = nullptr;       // the same layout
  const int64_t* slots = nullptr;      // [batch] cache slot of each row; null: first_slot + row
  int64_t first_slot = 0;
  const int64_t* positions = nullptr;  // [batch] the query's position: it sees keys 0..position
  int64_t batch = 0, heads = 0, kv_heads = 0, dim = 0, max_len = 0;
  int64_t key_len = 0;                 // keys past it are never read (every position < key_len)
  int64_t window = 0;                  // > 0: only keys with position - window < key <= position
  float scale = 1.f, softcap = 0.f;    // score = q.k * scale, then cap * tanh(score / cap) if cap > 0
  int64_t splits = 0;                  // key ranges per (row, kv head); 0: chosen from batch and key_len
  void* out = nullptr;                 // [batch, heads, dim]
  float* workspace = nullptr;          // decode_attention_workspace floats
};

// Whether the kernels take heads of `dim` elements (64, 128 or 256) and `heads / kv_heads` query
// heads per kv head (at most 8).
bool decode_attention_support(int64_t dim, int64_t heads, int64_t kv_heads);

// Floats of workspace the call needs for elements of `type` (partial results of every key split;
// none with one split).
int64_t decode_attention_workspace(ElementType type, const DecodeAttention& a);

// softmax(score) v per query head, in float32, rounded once to the element type: a partial pass
// per (row, kv head, key split) and, with more than one split, a second kernel that merges them.
void decode_attention(ElementType type, const DecodeAttention& a, cudaStream_t stream);

}  // namespace gpujob::model::kernels
