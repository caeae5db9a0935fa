// The decoder: one implementation for Llama, Qwen2, Qwen3 and Gemma 3, switched by ModelConfig.
#include "gpujob/model/decoder.hpp"

#include "gpujob/model/attention.hpp"
#include "gpujob/model/decoder_weights.hpp"
#include "gpujob/model/fused_ops.hpp"
#include "gpujob/model/rope.hpp"
#include "gpujob/util/error.hpp"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace gpujob::model {

// Per-call state shared by every block: positions, masks and rope tables (built once per
// distinct window / rope), and for cached calls where new keys and values go.
struct Decoder::Step {
  at::Tensor positions;               // int64 [batch, tokens]: rope positions and mask rows
  int64_t key_len = 0;                // keys each query row is masked against
  bool plain_causal = false;          // every row at positions 0..tokens-1, keys the same tokens
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

TokenBatch TokenBatch::from_sequences(const std::vector<std::vector<int64_t>>& sequences) {
  TokenBatch batch;
  int64_t width = 0;
  for (const auto& s : sequences) {
    GPUJOB_CHECK(!s.empty(), "token batch: sequence ", batch.lengths.size(), " is empty");
    batch.lengths.push_back(static_cast<int64_t>(s.size()));
    width = std::max<int64_t>(width, static_cast<int64_t>(s.size()));
  }
  batch.input_ids = at::zeros({static_cast<int64_t>(sequences.size()), width}, at::kLong);
  auto acc = batch.input_ids.accessor<int64_t, 2>();
  for (size_t b = 0; b < sequences.size(); ++b)
    for (size_t i = 0; i < sequences[b].size(); ++i) acc[b][i] = sequences[b][i];
  return batch;
}

std::unique_ptr<Decoder> Decoder::load(const std::string& model_dir, const LoadOptions& options) {
  std::string dir = model_dir;
  if (!dir.empty() && dir.back() == '/') dir.pop_back();
  ModelConfig config = load_model_config(dir + "/config.json");
  auto archive = SafetensorsArchive::open_directory(dir);
  auto weights = load_decoder_weights(config, archive, dir, options);
  return std::make_unique<Decoder>(std::move(config), std::move(weights), options);
}

Decoder::Decoder(ModelConfig config, std::unique_ptr<DecoderWeights> weights, const LoadOptions& options)
    : config_(std::move(config)), weights_(std::move(weights)), options_(options) {
  Collectives& c = collectives();
  GPUJOB_CHECK(c.size() == options_.shard_count && c.rank() == options_.shard_index,
               "decoder: collectives have rank ", c.rank(), " of ", c.size(),
               " but the decoder holds shard ", options_.shard_index, " of ", options_.shard_count);
  if (options_.device.is_cuda()) key_bucket_ = 256;
}

void Decoder::set_key_length_bucket(int64_t positions) {
  GPUJOB_CHECK(positions >= 1, "key length bucket must be at least 1 position, found ", positions);
  key_bucket_ = positions;
}

int64_t Decoder::attended_key_length(int64_t longest, int64_t max_len) const {
  const int64_t rounded = (longest + key_bucket_ - 1) / key_bucket_ * key_bucket_;
  return std::min(max_len, std::max(longest, rounded));
}

Decoder::~Decoder() = default;

Collectives& Decoder::collectives() const {
  return options_.collectives != nullptr ? *options_.collectives : identity_;
}

at::Tensor Decoder::rms_norm(const at::Tensor& x, const at::Tensor& weight) const {
  // Normalise in float32 as HF does; Gemma scales by (1 + w) in float32 before casting back,
  // Llama/Qwen cast back first and then scale by w in the model dtype.
  if (fused_ops_ && fused_ops_apply(x) && weight.scalar_type() == x.scalar_type()) {
    return fused_rms_norm(x, weight, config_.rms_norm_eps, config_.norm_offset);
  }
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor normed = xf * at::rsqrt(xf.pow(2).mean(-1, true) + config_.rms_norm_eps);
  if (config_.norm_offset != 0.0)
    return (normed * (weight.to(at::kFloat) + config_.norm_offset)).to(x.scalar_type());
  return weight * normed.to(x.scalar_type());
}

std::pair<at::Tensor, at::Tensor> Decoder::add_rms_norm(const at::Tensor& h, const at::Tensor& delta,
                                                       const at::Tensor& weight) const {
  if (!delta.defined()) return {h, rms_norm(h, weight)};
  if (fused_ops_ && fused_ops_apply(h) && h.is_contiguous() && delta.is_contiguous() &&
      delta.scalar_type() == h.scalar_type() && delta.sizes() == h.sizes() && weight.scalar_type() == h.scalar_type())
    return fused_add_rms_norm(h, delta, weight, config_.rms_norm_eps, config_.norm_offset);
  at::Tensor sum = h + delta;
  return {sum, rms_norm(sum, weight)};
}

at::Tensor Decoder::linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) const {
  if (fused_ops_ && fused_linear_apply(x, w)) return fused_linear(x, w, bias);
  return at::linear(x, w, bias);
}

void Decoder::check_token(int64_t token) const {
  GPUJOB_CHECK(token >= 0 && token < config_.vocab_size, config_.source, ": token id ", token,
               " is outside the vocabulary [0, ", config_.vocab_size, ")");
}

at::Tensor Decoder::embed(const at::Tensor& ids) const {
  at::Tensor h = weights_->embed.index_select(0, ids.reshape(-1)).view({ids.size(0), ids.size(1), -1});
  if (config_.embed_scale) {
    // The scale is rounded to the model dtype first, as HF does.
    at::Tensor scale = at::scalar_tensor(std::sqrt(static_cast<double>(config_.hidden_size)),
                                         h.options().dtype(at::kFloat)).to(h.scalar_type());
    h = h * scale;
  }
  return h;
}

// A block's q, k and v: q and k normed and rotated, [B, heads or kv_heads, T, D]. With a cache
// the new keys and values are in it already and attention reads them from there (the one-kernel
// path then leaves k undefined).
struct Decoder::Qkv {
  at::Tensor q, k, v;
};

Decoder::Qkv Decoder::project_qkv(int64_t l, const at::Tensor& x, Step& step) const {
  const auto& w = weights_->layers[l];
  const int64_t B = x.size(0), T = x.size(1), D = config_.head_dim;
  const int64_t heads = weights_->local_heads, kv_heads = weights_->local_kv_heads;
  Qkv out;
  if (fused_ops_ && !step.query_rows.defined()) {
    // One GEMM for q, k and v (their weights are stacked); each is a column block of the result.
    const at::Tensor qkv = linear(x, w.qkv, w.qkv_bias);
    const at::Tensor q_norm = config_.qk_norm ? w.q_norm : at::Tensor();
    const at::Tensor k_norm = config_.qk_norm ? w.k_norm : at::Tensor();
    const bool norms_match = !config_.qk_norm || (q_norm.scalar_type() == qkv.scalar_type() &&
                                                  k_norm.scalar_type() == qkv.scalar_type());
    out.v = qkv.narrow(-1, (heads + kv_heads) * D, kv_heads * D).view({B, T, kv_heads, D}).transpose(1, 2);
    if (norms_match && fused_attention_inputs_apply(qkv, D)) {
      // One kernel: the q/k norms, RoPE, and with a cache the writes of k and v into it.
      const RopeTables& tables = step.rope(weights_->inv_freq[l], x.scalar_type());
      KvCacheRows rows;
      if (step.cache != nullptr) rows = {step.cache->keys(l), step.cache->values(l), step.cache_rows};
      auto [q, k] = fused_attention_inputs(qkv, heads, kv_heads, D, q_norm, k_norm, config_.rms_norm_eps,
                                           config_.norm_offset, tables.cos, tables.sin,
                                           step.cache != nullptr ? &rows : nullptr);
      out.q = q.transpose(1, 2);
      if (k.defined()) out.k = k.transpose(1, 2);
      return out;
    }
    // The norms and RoPE below read the column blocks in place.
    out.q = qkv.narrow(-1, 0, heads * D).view({B, T, heads, D});
    out.k = qkv.narrow(-1, heads * D, kv_heads * D).view({B, T, kv_heads, D});
  } else {
    // Queries only at the query rows when the step has them; keys and values at every token.
    const at::Tensor xq = step.at_query_rows(x);
    out.q = linear(xq, w.q, w.q_bias).view({B, xq.size(1), heads, D});
    out.k = linear(x, w.k, w.k_bias).view({B, T, kv_heads, D});
    out.v = linear(x, w.v, w.v_bias).view({B, T, kv_heads, D}).transpose(1, 2);
  }
  if (config_.qk_norm) {
    out.q = rms_norm(out.q, w.q_norm);
    out.k = rms_norm(out.k, w.k_norm);
  }
  // q, k: [B, T, heads, D] in, [B, heads, T, D] out.
  const auto rope = [&](const at::Tensor& t, const RopeTables& tables) {
    if (fused_ops_ && fused_ops_apply(t)) return fused_rope(t, tables.cos, tables.sin).transpose(1, 2);
    return apply_rope(t.transpose(1, 2), tables);
  };
  out.q = rope(out.q, step.query_rope(weights_->inv_freq[l], x.scalar_type()));
  out.k = rope(out.k, step.rope(weights_->inv_freq[l], x.scalar_type()));
  if (step.cache != nullptr) {
    // Append the new keys/values at each slot's length (attention reads them back).
    const auto flat = [&](const at::Tensor& t) {
      at::Tensor rows = t.transpose(1, 2).reshape({B * T, kv_heads, D});
      return step.write_src.defined() ? rows.index_select(0, step.write_src) : rows;  // undefined: every row
    };
    step.cache->keys(l).view({-1, kv_heads, D}).index_copy_(0, step.write_dst, flat(out.k));
    step.cache->values(l).view({-1, kv_heads, D}).index_copy_(0, step.write_dst, flat(out.v));
  }
  return out;
}

at::Tensor Decoder::attend(int64_t l, const Qkv& qkv, Step& step) const {
  const int64_t B = qkv.q.size(0), Q = qkv.q.size(2), D = config_.head_dim;
  const int64_t heads = weights_->local_heads, kv_heads = weights_->local_kv_heads;
  const LayerSpec& spec = config_.layers[l];
  const AttentionParams params{config_.attention_scale, config_.attn_logit_softcapping};
  const int64_t window = spec.sliding ? spec.window : 0;
  if (step.cache != nullptr && Q == 1 && fused_ops_ && backend_ == AttentionBackend::kAuto) {
    // A decode step: one kernel reads each row's keys and values in the cache up to its position.
    const at::Tensor q_rows = qkv.q.transpose(1, 2).reshape({B, heads, D});
    if (fused_decode_attention_apply(q_rows, kv_heads)) {
      DecodeAttentionRequest r;
      r.q = q_rows;
      r.keys = step.cache->keys(l);
      r.values = step.cache->values(l);
      if (step.first_slot >= 0) r.first_slot = step.first_slot;
      else r.slots = step.read_slots;
      r.positions = step.positions.reshape({B});
      r.key_len = step.key_len;
      r.window = window;
      r.scale = params.scale;
      r.softcap = params.softcap;
      return fused_decode_attention(r).view({B, 1, heads * D});
    }
  }
  at::Tensor k = qkv.k, v = qkv.v;
  if (step.cache != nullptr) {  // each row's keys and values, read back from the cache
    const at::Tensor& kc = step.cache->keys(l);
    const at::Tensor& vc = step.cache->values(l);
    if (step.first_slot >= 0) {  // consecutive slots: read the cache in place
      k = kc.narrow(0, step.first_slot, B).narrow(1, 0, step.key_len).transpose(1, 2);
      v = vc.narrow(0, step.first_slot, B).narrow(1, 0, step.key_len).transpose(1, 2);
    } else {
      k = kc.narrow(1, 0, step.key_len).index_select(0, step.read_slots).transpose(1, 2);
      v = vc.narrow(1, 0, step.key_len).index_select(0, step.read_slots).transpose(1, 2);
    }
  }
  return attention(qkv.q, k, v, step.mask(window), params, backend_,
                   step.bias(window, heads, kv_heads, qkv.q.scalar_type(), params, backend_))
      .transpose(1, 2)
      .reshape({B, Q, heads * D});
}

at::Tensor Decoder::self_attention(int64_t l, const at::Tensor& x, Step& step) const {
  at::Tensor out = linear(attend(l, project_qkv(l, x, step), step), weights_->layers[l].o);
  collectives().all_reduce_sum(out);
  return out;
}

at::Tensor Decoder::mlp(int64_t l, const at::Tensor& x) const {
  const auto& w = weights_->layers[l];
  const bool gelu = config_.activation != Activation::kSilu;
  at::Tensor activated;
  if (fused_ops_) {
    // One GEMM for gate and up (stacked weights), then one kernel where it applies.
    const at::Tensor gate_up = linear(x, w.gate_up);
    if (fused_ops_apply(gate_up)) {
      activated = fused_gated_activation(gate_up, gelu);
    } else {
      const int64_t I = gate_up.size(-1) / 2;
      const at::Tensor gate = gate_up.narrow(-1, 0, I);
      activated = (gelu ? at::gelu(gate, "tanh") : at::silu(gate)) * gate_up.narrow(-1, I, I);
    }
  } else {
    const at::Tensor gate = linear(x, w.gate);
    activated = (gelu ? at::gelu(gate, "tanh") : at::silu(gate)) * linear(x, w.up);
  }
  at::Tensor out = linear(activated, w.down);
  collectives().all_reduce_sum(out);
  return out;
}

Decoder::Residual Decoder::block(int64_t l, const Residual& in, Step& step) const {
  const auto& w = weights_->layers[l];
  // The previous block's last residual addition happens here, with this block's first norm.
  const auto [h, attn_in] = add_rms_norm(in.h, in.pending, w.attn_norm);
  at::Tensor attn = self_attention(l, attn_in, step);
  if (config_.sandwich_norms) attn = rms_norm(attn, w.post_attn_norm);
  // With queries at some rows only, the block continues at those rows.
  auto [residual, mlp_in] = add_rms_norm(step.at_query_rows(h), attn, w.mlp_norm);
  at::Tensor mlp_out = mlp(l, mlp_in);
  if (config_.sandwich_norms) mlp_out = rms_norm(mlp_out, w.post_mlp_norm);
  return {std::move(residual), std::move(mlp_out)};
}

at::Tensor Decoder::lm_head(const at::Tensor& normed) const {
  at::Tensor logits = linear(normed, weights_->lm_head);
  const double cap = config_.final_logit_softcapping;
  if (cap > 0) logits = at::tanh(logits / cap) * cap;
  return logits.to(at::kFloat);
}

ForwardOutput Decoder::forward(const TokenBatch& batch, const ForwardRequest& request) const {
  at::NoGradGuard no_grad;
  const int64_t n_layers = config_.num_layers;
  int64_t deepest = request.logits ? n_layers : -1;
  for (int64_t index : request.hidden_indices) {
    GPUJOB_CHECK(index >= 0 && index <= n_layers, config_.source, ": hidden state index ", index,
                 " is outside [0, ", n_layers, "] (layer L is index L + 1)");
    deepest = std::max(deepest, index);
  }
  GPUJOB_CHECK(request.deepest_rows.empty() || !request.logits,
               "forward: deepest_rows cannot be combined with logits");
  ForwardOutput out;
  out.hidden.resize(request.hidden_indices.size());
  if (deepest < 0) return out;
  GPUJOB_CHECK(batch.input_ids.dim() == 2 && batch.input_ids.size(0) == static_cast<int64_t>(batch.lengths.size()),
               "forward: input_ids must be [batch, tokens] with one length per row");
  const auto requested = [&](int64_t index) {
    return std::find(request.hidden_indices.begin(), request.hidden_indices.end(), index) !=
           request.hidden_indices.end();
  };
  const auto store = [&](int64_t index, const at::Tensor& h) {
    for (size_t k = 0; k < request.hidden_indices.size(); ++k)
      if (request.hidden_indices[k] == index) out.hidden[k] = h;
  };

  // Token ids are checked on the host, before they reach the device (no device sync).
  {
    at::Tensor host = batch.input_ids.to(at::kCPU).contiguous();
    const int64_t* p = host.data_ptr<int64_t>();
    for (int64_t i = 0; i < host.numel(); ++i) check_token(p[i]);
  }
  at::Tensor ids = batch.input_ids.to(options_.device);
  const int64_t B = ids.size(0), T = ids.size(1);
  Step step;
  // Right padding needs no key mask: under the causal mask a real token only sees earlier,
  // real tokens, so padding cannot change it.
  step.positions = at::arange(T, ids.options()).unsqueeze(0).expand({B, T});
  step.key_len = T;
  step.plain_causal = true;

  Residual r{embed(ids), {}};
  store(0, r.h);
  const int64_t blocks = std::min(deepest, n_layers);
  const bool rows_only = !request.deepest_rows.empty() && blocks > 0;
  for (int64_t l = 0; l < blocks; ++l) {
    if (rows_only && l + 1 == blocks) select_query_rows(batch, request.deepest_rows, step);
    r = block(l, r, step);
    if (l + 1 < n_layers && requested(l + 1)) {
      r = {settle(r), {}};
      store(l + 1, r.h);
    }
  }
  if (deepest == n_layers) {  // HF's last hidden state is after the final norm
    const at::Tensor normed = add_rms_norm(r.h, r.pending, weights_->final_norm).second;
    store(n_layers, normed);
    if (request.logits) out.logits = lm_head(normed);
  }
  return out;
}

void Decoder::select_query_rows(const TokenBatch& batch, const std::vector<std::vector<int64_t>>& rows,
                                Step& step) const {
  const int64_t B = batch.input_ids.size(0), T = batch.input_ids.size(1);
  GPUJOB_CHECK(static_cast<int64_t>(rows.size()) == B, "forward: deepest_rows has ", rows.size(),
               " rows for a batch of ", B);
  const int64_t R = static_cast<int64_t>(rows.front().size());
  std::vector<int64_t> flat, positions;
  for (int64_t b = 0; b < B; ++b) {
    GPUJOB_CHECK(static_cast<int64_t>(rows[b].size()) == R && R > 0, "forward: deepest_rows[", b, "] has ",
                 rows[b].size(), " positions, row 0 has ", R, " (every row needs the same count, at least one)");
    for (int64_t i : rows[b]) {
      GPUJOB_CHECK(i >= 0 && i < batch.lengths[b], "forward: deepest_rows[", b, "] position ", i,
                   " is outside the sequence's ", batch.lengths[b], " tokens");
      flat.push_back(b * T + i);
      positions.push_back(i);
    }
  }
  step.query_rows = at::tensor(flat, at::kLong).to(options_.device);
  step.query_positions = at::tensor(positions, at::kLong).view({B, R}).to(options_.device);
  step.plain_causal = false;  // the mask rows are the query rows' positions now
  step.masks.clear();
  step.biases.clear();
}

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

  Residual r{embed(on_device(ids, {B, T})), {}};
  for (int64_t l = 0; l < config_.num_layers; ++l) r = block(l, r, step);
  std::vector<int64_t> last(B);
  for (int64_t b = 0; b < B; ++b) last[b] = b * T + static_cast<int64_t>(new_tokens[b].size()) - 1;
  const at::Tensor last_rows = on_device(last, {B});
  const auto at_last = [&](const at::Tensor& t) {
    return t.defined() ? t.reshape({B * T, -1}).index_select(0, last_rows) : t;
  };
  at::Tensor logits = lm_head(add_rms_norm(at_last(r.h), at_last(r.pending), weights_->final_norm).second);
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
  Residual r{embed(ids.view({S, 1})), {}};
  for (int64_t l = 0; l < config_.num_layers; ++l) r = block(l, r, step);
  return lm_head(add_rms_norm(r.h, r.pending, weights_->final_norm).second.select(1, 0));
}

}  // namespace gpujob::model
