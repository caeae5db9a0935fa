// Decoder: one transformer decoder for every supported family: loading, batched forward, cached forward.
#pragma once

#include "gpujob/model/collectives.hpp"
#include "gpujob/model/kv_cache.hpp"
#include "gpujob/model/model_config.hpp"

#include <ATen/ATen.h>

#include <memory>
#include <utility>
#include <string>
#include <vector>

namespace gpujob::model {

enum class AttentionBackend {
  kAuto,       // fused scaled-dot-product attention where libtorch has it (>= 2.1), else the fallback
  kFallback,   // matmul + mask + softmax, as HF's eager attention
};

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;   // bfloat16, float16 or float32
  at::Device device = at::kCPU;
  int shard_index = 0;                 // tensor-parallel shard held by this process
  int shard_count = 1;                 // shards; must divide n_heads and n_kv_heads
  // Reductions between shards; null means one process (identity). Not owned: must outlive the decoder.
  Collectives* collectives = nullptr;
};

// Token sequences of different lengths, right-padded into one [batch, max_len] tensor.
struct TokenBatch {
  at::Tensor input_ids;          // int64 [batch, max_len], padding is token 0
  std::vector<int64_t> lengths;  // real tokens per row
  static TokenBatch from_sequences(const std::vector<std::vector<int64_t>>& sequences);
};

// What one batched forward returns.
struct ForwardOutput {
  // hidden[k]: HF's hidden_states[request.hidden_indices[k]] as [batch, max_len, hidden] in the
  // model's dtype on its device (rows past a sequence's length are padding, not meaningful).
  std::vector<at::Tensor> hidden;
  at::Tensor logits;  // float32 [batch, max_len, vocab] when requested, else undefined
};

struct ForwardRequest {
  // HF hidden_states indices: 0 is the embedding output, L + 1 the output of block L, and
  // num_layers the output of the last block after the final norm (HF's convention).
  std::vector<int64_t> hidden_indices;
  bool logits = false;  // run the final norm and LM head
  // Row capture at the deepest index (optional): deepest_rows[b] lists token positions of row b
  // (each below its length, the same count R for every row). The last block that runs then
  // computes queries, attention output and MLP only at those positions (keys and values still at
  // every token, so the values are those of the full pass): the work of one block shrinks to its
  // key/value projections. The deepest index's hidden state is then [batch, R, hidden], column r
  // the state at deepest_rows[b][r]. Not with logits.
  std::vector<std::vector<int64_t>> deepest_rows;
};

class DecoderWeights;  // the weights, defined in gpujob/model/decoder_weights.hpp

class Decoder {
 public:
  // Loads config.json and the safetensors of a HF model directory.
  static std::unique_ptr<Decoder> load(const std::string& model_dir, const LoadOptions& options);

  Decoder(ModelConfig config, std::unique_ptr<DecoderWeights> weights, const LoadOptions& options);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  const ModelConfig& config() const { return config_; }
  const LoadOptions& options() const { return options_; }
  void set_attention_backend(AttentionBackend backend) { backend_ = backend; }
  // Fused work: q/k/v and gate/up each in one GEMM over stacked weights (any device), and the
  // fused element-wise CUDA kernels (RMSNorm, RoPE, gated activation; gpujob/model/fused_ops.hpp)
  // where they apply (a CUDA build, CUDA tensors). Off until set; jobs set it from
  // model.fused_kernels (on by default). Off: separate GEMMs and the ATen expressions.
  void set_fused_ops(bool on) { fused_ops_ = on; }
  // Folded norms (with the fused work, one-row decode steps of one shard, no sandwich norms): the
  // o and down projections add their output to the residual stream in their own kernel and the
  // q/k/v and gate/up kernels apply the RMSNorm before them, so a block runs no norm kernel
  // (gpujob/model/fused_ops.hpp: fused_linear_add, fused_normed_linear). On by default (batch-1
  // decode 0.5-1.4% faster on an H200, BENCHMARKS.md); generate_bench --fold-norms 0 turns it off.
  void set_fold_norms(bool on) { fold_norms_ = on; }
  // Blocks run with folded norms since the decoder was made (a CUDA graph counts once, when it is
  // captured): what tests and benchmarks check to know the folded path ran.
  int64_t folded_blocks() const { return folded_blocks_; }
  // Split o and down layers (with the fused work, decode steps of 2 to 32 rows of one shard, no
  // sandwich norms): each layer leaves float32 partial sums over slices of its inputs and the
  // residual addition + RMSNorm after it adds them up, where cuBLAS would split the layer itself
  // and reduce in a kernel of its own (gpujob/model/fused_ops.hpp: split_linear). On by default
  // (BENCHMARKS.md); generate_bench --split-linear 0 turns it off. split_blocks() counts the
  // blocks that ran so (a CUDA graph counts once, when it is captured).
  void set_split_linear(bool on) { split_linear_ = on; }
  int64_t split_blocks() const { return split_blocks_; }

  // Full (uncached) forward over a right-padded batch. Runs only the blocks the deepest
  // requested index needs; padding never changes a sequence's results.
  ForwardOutput forward(const TokenBatch& batch, const ForwardRequest& request) const;

  // KV cache sized for this decoder (its shard's kv heads, its dtype and device).
  KvCache make_kv_cache(int64_t n_slots, int64_t max_len) const;
  KvCacheShape kv_cache_shape() const;

  // Appends new_tokens[i] to cache slot slots[i] (at its current length) and returns float32
  // logits [slots.size(), vocab] of each slot's last new token, on the decoder's device.
  // Prefill (many tokens) and decode (one token) both go through here; slots in one call may
  // have different token counts (each at least one). Positions continue from the slot length.
  at::Tensor forward_cached(KvCache& cache, const std::vector<int64_t>& slots,
                            const std::vector<std::vector<int64_t>>& new_tokens) const;

  // One decode step of every slot of the cache at once, with shapes fixed by the cache and
  // key_len alone and every input already on the device: slot s takes token ids[s] at position
  // positions[s] (int64 [n_slots] each) and attends over key positions [0, key_len), key_len >
  // every position. Returns float32 logits [n_slots, vocab]. Nothing here reads the host or
  // allocates host memory, so a CUDA graph can capture the whole step (DecodeGraphs). The caller
  // keeps the slot lengths (KvCache::set_length) and feeds slots it does not use a harmless token
  // (position 0 of a slot that is reset before its next prompt); their rows are computed and
  // ignored. Token ids are not range-checked here (they come from this model's own sampler).
  at::Tensor decode_step(KvCache& cache, const at::Tensor& ids, const at::Tensor& positions,
                         int64_t key_len) const;
  // True when a CUDA graph can capture decode_step: a CUDA device, and collectives between shards
  // (if any) that only queue work on the stream (NCCL; not MPI, whose host waits).
  bool decode_step_capturable() const;

  // Cached calls attend over key positions [0, K): K is the longest slot's length after the call
  // rounded up to a multiple of the bucket, capped at the cache's max_len. Between two bucket
  // boundaries every decode step of a batch has the same tensor shapes (what a CUDA graph captures);
  // the extra positions are masked and change nothing. Default: 256 on CUDA, 1 (exact) on the CPU.
  void set_key_length_bucket(int64_t positions);
  int64_t key_length_bucket() const { return key_bucket_; }
  int64_t attended_key_length(int64_t longest, int64_t max_len) const;

  // One-line error naming config.json when a token id is outside the vocabulary.
  void check_token(int64_t token) const;

 private:
  struct Step;
  // The residual stream between blocks: h plus, when the addition is left to the next norm (one
  // kernel makes both, add_rms_norm), the last block's MLP output. With folded norms h is complete
  // and squares holds the sums of squares of h that the next block's first kernel norms it with.
  // With split layers pending is instead the float32 partial sums of the down projection
  // (split_linear: [splits, ...h's shape]) and pending_split is set.
  struct Residual {
    at::Tensor h, pending, squares;
    bool pending_split = false;
  };
  // A layer's input behind an RMSNorm: the normed tensor, or with folded norms the residual row
  // and the norm weight, for the layer's kernel to norm (defined in decoder.cpp).
  struct NormedInput;
  // {h, the input of the layer with weight layer_weight behind the norm norm_weight} of a block's
  // residual stream: folded where the layer's kernel can norm it, else add_rms_norm.
  std::pair<at::Tensor, NormedInput> norm_input(const Residual& in, const at::Tensor& norm_weight,
                                                const at::Tensor& layer_weight) const;
  Collectives& collectives() const;
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) const;
  // {h + delta, rms_norm(h + delta)}; delta undefined: {h, rms_norm(h)}.
  std::pair<at::Tensor, at::Tensor> add_rms_norm(const at::Tensor& h, const at::Tensor& delta,
                                                 const at::Tensor& weight) const;
  // What is still to be added to r.h, in h's dtype (split partial sums added up and rounded).
  static at::Tensor pending_delta(const Residual& r);
  static at::Tensor settle(const Residual& r) { return r.pending.defined() ? r.h + pending_delta(r) : r.h; }
  // add_rms_norm(r.h, pending_delta(r), weight), with split partial sums added up in the norm's kernel.
  std::pair<at::Tensor, at::Tensor> add_pending_rms_norm(const Residual& r, const at::Tensor& weight) const;
  // at::linear, or with the fused work the small-batch kernel where it applies (decode steps).
  at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {}) const;
  void check_cache(const KvCache& cache, const char* caller) const;
  at::Tensor embed(const at::Tensor& ids) const;
  struct Qkv;
  // q, k and v of a block's input (normed, rotated, appended to the step's cache).
  Qkv project_qkv(int64_t layer, const NormedInput& x, Step& step) const;
  // Attention of q over the keys and values (the cache's, in a cached step): [B, Q, heads * D].
  at::Tensor attend(int64_t layer, const Qkv& qkv, Step& step) const;
  // act(gate) * up of the MLP's input.
  at::Tensor mlp_activation(int64_t layer, const NormedInput& x) const;
  // A layer whose output the shards sum (o, down): linear, then the all-reduce.
  at::Tensor project_out(const at::Tensor& x, const at::Tensor& w) const;
  // Whether block `layer` folds its norms for attention output attn and residual h (one row).
  bool folds_norms(int64_t layer, const at::Tensor& attn, const at::Tensor& h, const Step& step) const;
  // Whether block `layer` splits its o projection (attention output attn, residual h); its down
  // projection splits too where split_linear_apply takes the MLP's activation.
  bool splits_linear(int64_t layer, const at::Tensor& attn, const at::Tensor& h, const Step& step) const;
  Residual block(int64_t layer, const Residual& in, Step& step) const;
  // Makes the step's next block compute queries only at `rows` (ForwardRequest::deepest_rows).
  void select_query_rows(const TokenBatch& batch, const std::vector<std::vector<int64_t>>& rows, Step& step) const;
  at::Tensor lm_head(const at::Tensor& normed) const;

  ModelConfig config_;
  std::unique_ptr<DecoderWeights> weights_;
  LoadOptions options_;
  mutable IdentityCollectives identity_;
  AttentionBackend backend_ = AttentionBackend::kAuto;
  bool fused_ops_ = false;
  bool fold_norms_ = true;
  mutable int64_t folded_blocks_ = 0;
  bool split_linear_ = true;
  mutable int64_t split_blocks_ = 0;
  int64_t key_bucket_ = 1;
};

}  // namespace gpujob::model
