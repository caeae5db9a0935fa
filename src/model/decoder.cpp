// The decoder: one implementation for Llama, Qwen2, Qwen3 and Gemma 3, switched by ModelConfig.
#include "gpujob/model/decoder.hpp"

#include "decoder_step.hpp"
#include "gpujob/model/attention.hpp"
#include "gpujob/model/decoder_weights.hpp"
#include "gpujob/model/device.hpp"
#include "gpujob/model/fused_ops.hpp"
#include "gpujob/model/rope.hpp"
#include "gpujob/util/error.hpp"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>

namespace gpujob::model {

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
  // Kernels launched programmatically read weights before waiting for the kernel ahead of them
  // (src/model/kernel_launch.cuh): the copies and conversions that made the weights end here.
  wait_for_device(options_.device);
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

bool Decoder::decode_step_capturable() const {
  return options_.device.is_cuda() && collectives().graph_capturable();
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

struct Decoder::NormedInput {
  at::Tensor normed;       // the layer's input; undefined when folded
  ResidualRow row;         // folded: the residual row and its sums of squares
  at::Tensor norm_weight;  // folded: the norm's weight
  bool folded() const { return row.squares.defined(); }
  const at::Tensor& like() const { return folded() ? row.h : normed; }  // its shape and dtype
};

std::pair<at::Tensor, Decoder::NormedInput> Decoder::norm_input(const Residual& in, const at::Tensor& norm_weight,
                                                                const at::Tensor& layer_weight) const {
  if (in.squares.defined()) {  // the previous block folded its norms: h is complete
    if (layer_weight.defined() && fused_normed_linear_apply(in.h, norm_weight, layer_weight))
      return {in.h, NormedInput{{}, {in.h, in.squares}, norm_weight}};
    return {in.h, NormedInput{rms_norm(in.h, norm_weight), {}, {}}};
  }
  auto [h, normed] = add_pending_rms_norm(in, norm_weight);
  return {h, NormedInput{normed, {}, {}}};
}

at::Tensor Decoder::pending_delta(const Residual& r) {
  if (!r.pending_split) return r.pending;
  return r.pending.sum(0).to(r.h.scalar_type());
}

std::pair<at::Tensor, at::Tensor> Decoder::add_pending_rms_norm(const Residual& r, const at::Tensor& weight) const {
  if (r.pending_split && weight.scalar_type() == r.h.scalar_type() && fused_add_partials_rms_norm_apply(r.h, r.pending))
    return fused_add_partials_rms_norm(r.h, r.pending, weight, config_.rms_norm_eps, config_.norm_offset);
  return add_rms_norm(r.h, pending_delta(r), weight);
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

Decoder::Qkv Decoder::project_qkv(int64_t l, const NormedInput& in, Step& step) const {
  const auto& w = weights_->layers[l];
  const at::Tensor& x = in.like();
  const int64_t B = x.size(0), T = x.size(1), D = config_.head_dim;
  const int64_t heads = weights_->local_heads, kv_heads = weights_->local_kv_heads;
  Qkv out;
  if (fused_ops_ && !step.query_rows.defined()) {
    // One GEMM for q, k and v (their weights are stacked); each is a column block of the result.
    const at::Tensor qkv = in.folded() ? fused_normed_linear(in.row, in.norm_weight, config_.rms_norm_eps,
                                                             config_.norm_offset, w.qkv, w.qkv_bias)
                                       : linear(x, w.qkv, w.qkv_bias);
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
    GPUJOB_CHECK(!in.folded(), "decoder: a folded norm reached the unfused q/k/v projections");
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

at::Tensor Decoder::project_out(const at::Tensor& x, const at::Tensor& w) const {
  at::Tensor out = linear(x, w);
  collectives().all_reduce_sum(out);
  return out;
}

at::Tensor Decoder::mlp_activation(int64_t l, const NormedInput& in) const {
  const auto& w = weights_->layers[l];
  const bool gelu = config_.activation != Activation::kSilu;
  if (in.folded()) {  // the norm, both weight rows and the activation: one kernel
    return fused_normed_gated_linear(in.row, in.norm_weight, config_.rms_norm_eps, config_.norm_offset, w.gate_up,
                                     gelu);
  }
  const at::Tensor& x = in.normed;
  const auto gated = [gelu](const at::Tensor& gate, const at::Tensor& up) {
    return (gelu ? at::gelu(gate, "tanh") : at::silu(gate)) * up;
  };
  if (fused_ops_ && fused_linear_apply(x, w.gate_up)) {
    return fused_gated_linear(x, w.gate_up, gelu);  // one row: both weight rows and the activation, one kernel
  }
  if (fused_ops_) {
    // One GEMM for gate and up (stacked weights), then one kernel where it applies.
    const at::Tensor gate_up = linear(x, w.gate_up);
    const int64_t I = gate_up.size(-1) / 2;
    return fused_ops_apply(gate_up) ? fused_gated_activation(gate_up, gelu)
                                    : gated(gate_up.narrow(-1, 0, I), gate_up.narrow(-1, I, I));
  }
  return gated(linear(x, w.gate), linear(x, w.up));
}

bool Decoder::folds_norms(int64_t l, const at::Tensor& attn, const at::Tensor& h, const Step& step) const {
  const auto& w = weights_->layers[l];
  // One shard only: with several, the o and down outputs are partial sums until the all-reduce.
  // Sandwich norms (Gemma) norm the o and down outputs before the addition.
  return fold_norms_ && fused_ops_ && options_.shard_count == 1 && !config_.sandwich_norms &&
         !step.query_rows.defined() && fused_linear_apply(attn, w.o) && h.is_contiguous() &&
         h.scalar_type() == attn.scalar_type() && h.numel() == w.o.size(0) && w.gate_up.defined() &&
         fused_normed_linear_apply(h, w.mlp_norm, w.gate_up);
}

bool Decoder::splits_linear(int64_t l, const at::Tensor& attn, const at::Tensor& h, const Step& step) const {
  const auto& w = weights_->layers[l];
  // As folds_norms: one shard (the o and down outputs are complete), no sandwich norms (nothing
  // between o and the addition), every row of the step continuing. The norm's kernel takes the
  // partial sums where fused_add_partials_rms_norm_apply holds, else they are added up first.
  return split_linear_ && fused_ops_ && options_.shard_count == 1 && !config_.sandwich_norms &&
         !step.query_rows.defined() && h.scalar_type() == attn.scalar_type() &&
         h.numel() == attn.numel() / attn.size(-1) * w.o.size(0) && split_linear_apply(attn, w.o);
}

Decoder::Residual Decoder::block(int64_t l, const Residual& in, Step& step) const {
  const auto& w = weights_->layers[l];
  // The previous block's last residual addition happens here, with this block's first norm (folded:
  // in the previous block's down projection, and the norm in the q/k/v kernel).
  const auto [h, attn_in] = norm_input(in, w.attn_norm, w.qkv);
  const at::Tensor attn = attend(l, project_qkv(l, attn_in, step), step);
  // With queries at some rows only, the block continues at those rows.
  const at::Tensor residual = step.at_query_rows(h);
  if (folds_norms(l, attn, residual, step)) {
    // o with the residual addition, then gate/up with the norm: no norm kernel in between.
    ++folded_blocks_;
    const ResidualRow mid = fused_linear_add(attn, w.o, {}, residual);
    const at::Tensor activated = mlp_activation(l, NormedInput{{}, mid, w.mlp_norm});
    if (!fused_linear_apply(activated, w.down)) return {mid.h, project_out(activated, w.down), {}};
    const ResidualRow out = fused_linear_add(activated, w.down, {}, mid.h);
    return {out.h, {}, out.squares};
  }
  if (splits_linear(l, attn, residual, step)) {
    // o's partial sums added up in the norm after it; down's in the next block's first norm.
    ++split_blocks_;
    const auto [mid, mlp_normed] = add_pending_rms_norm({residual, split_linear(attn, w.o), {}, true}, w.mlp_norm);
    const at::Tensor activated = mlp_activation(l, NormedInput{mlp_normed, {}, {}});
    if (split_linear_apply(activated, w.down)) return {mid, split_linear(activated, w.down), {}, true};
    return {mid, project_out(activated, w.down), {}};
  }
  at::Tensor attn_out = project_out(attn, w.o);
  if (config_.sandwich_norms) attn_out = rms_norm(attn_out, w.post_attn_norm);
  auto [mid, mlp_normed] = add_rms_norm(residual, attn_out, w.mlp_norm);
  at::Tensor mlp_out = project_out(mlp_activation(l, NormedInput{mlp_normed, {}, {}}), w.down);
  if (config_.sandwich_norms) mlp_out = rms_norm(mlp_out, w.post_mlp_norm);
  return {std::move(mid), std::move(mlp_out), {}};
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

  Residual r{embed(ids), {}, {}};
  store(0, r.h);
  const int64_t blocks = std::min(deepest, n_layers);
  const bool rows_only = !request.deepest_rows.empty() && blocks > 0;
  for (int64_t l = 0; l < blocks; ++l) {
    if (rows_only && l + 1 == blocks) select_query_rows(batch, request.deepest_rows, step);
    r = block(l, r, step);
    if (l + 1 < n_layers && requested(l + 1)) {
      r = {settle(r), {}, {}};
      store(l + 1, r.h);
    }
  }
  if (deepest == n_layers) {  // HF's last hidden state is after the final norm
    const at::Tensor normed = add_pending_rms_norm(r, weights_->final_norm).second;
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

}  // namespace gpujob::model
