// DecodeGraphs: the decode step of every KV-cache slot, replayed from CUDA graphs on a GPU.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace gpujob::model {

class Decoder;
class KvCache;

// Runs Decoder::decode_step over all slots of one cache. Where a graph can capture the step
// (Decoder::decode_step_capturable: a CUDA device, and NCCL between tensor-parallel shards) and
// `use_graphs`, each key length (a bucket boundary: Decoder::attended_key_length) is captured
// once into a CUDA graph and replayed after that: one launch per step instead of hundreds of
// kernel launches from the host, which is what bounds decoding at small batch. Shards capture their
// all-reduces in the graph: every shard captures and replays the same steps, so the collectives
// stay in the same order. Otherwise (CPU, MPI between shards, or use_graphs false) the same step
// runs eagerly, so both paths share everything but the capture. A capture that fails (out of
// memory, say) turns graphs off for this object with a warning and the step runs eagerly; nothing
// is lost.
class DecodeGraphs {
 public:
  // Neither is owned; both must outlive this object.
  DecodeGraphs(const Decoder& decoder, KvCache& cache, bool use_graphs);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // ids and positions: one per slot (see Decoder::decode_step). Returns float32 logits
  // [n_slots, vocab] on the decoder's device; with graphs the tensor is the graph's output buffer,
  // overwritten by the next step, so read it before calling again.
  at::Tensor step(const std::vector<int64_t>& ids, const std::vector<int64_t>& positions, int64_t key_len);

  bool uses_graphs() const;  // false once a capture failed, or where graphs do not apply

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpujob::model
