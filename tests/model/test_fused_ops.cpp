// The fused CUDA kernels against the ATen expressions they replace (CUDA builds with a GPU; the
// CPU build has no kernels and says so).
#include "gpujob/model/fused_ops.hpp"
#include "gpujob/model/attention.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/device.hpp"
#include "model/tiny_model.hpp"

#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::model;

namespace {

bool have_gpu() {
  if (!fused_ops_built()) {
    WARN("CPU build: the fused kernels are built only with a CUDA libtorch");
    return false;
  }
  if (visible_gpu_count() == 0) {
    WARN("no GPU visible: the fused kernels are not run");
    return false;
  }
  return true;
}

// Largest difference in units of the dtype's rounding step at the reference's magnitude: results
// that round the same float32 values the same way differ by at most about one step.
double steps_apart(const at::Tensor& got, const at::Tensor& want) {
  const double eps = want.scalar_type() == at::kBFloat16 ? 1.0 / 128 : want.scalar_type() == at::kHalf ? 1.0 / 1024 : 1e-6;
  const at::Tensor g = got.to(at::kDouble).cpu(), w = want.to(at::kDouble).cpu();
  return ((g - w).abs() / (w.abs() * eps + 1e-6)).max().item<double>();
}

const at::ScalarType kTypes[] = {at::kFloat, at::kBFloat16, at::kHalf};

// The checkpoint in dir on the first GPU in dtype `type`, with the fused work on or off.
std::unique_ptr<Decoder> cuda_decoder(const std::string& dir, at::ScalarType type, bool fused) {
  LoadOptions load;
  load.device = at::Device(at::kCUDA, 0);
  load.dtype = type;
  auto decoder = Decoder::load(dir, load);
  decoder->set_fused_ops(fused);
  return decoder;
}

}  // namespace

TEST_CASE("fused RMSNorm equals the float32 ATen expression, both weight conventions") {
  if (!have_gpu()) return;
  at::manual_seed(3);
  for (const auto type : kTypes)
  for (const double offset : {0.0, 1.0})
  for (const int64_t hidden : {96, 98, 4096}) {  // 98: rows not a whole number of 16-byte vectors
    INFO("dtype " << type << ", offset " << offset << ", hidden " << hidden);
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(type);
    const at::Tensor x = (at::randn({6, 7, hidden}, opts.dtype(at::kFloat)) * 3).to(type);
    const at::Tensor w = at::randn({hidden}, opts.dtype(at::kFloat)).to(type);
    const at::Tensor xf = x.to(at::kFloat);
    const at::Tensor normed = xf * at::rsqrt(xf.pow(2).mean(-1, true) + 1e-6);
    const at::Tensor want = offset != 0 ? (normed * (w.to(at::kFloat) + offset)).to(type) : w * normed.to(type);
    CHECK(steps_apart(fused_rms_norm(x, w, 1e-6, offset), want) <= 1.01);
  }
}

TEST_CASE("fused gated activation of a stacked gate/up row equals act(gate) * up, SiLU and GELU-tanh") {
  if (!have_gpu()) return;
  at::manual_seed(4);
  for (const auto type : kTypes)
  for (const bool gelu : {false, true})
  for (const int64_t width : {333, 336}) {  // 336: whole 16-byte vectors (the vector kernel)
    INFO("dtype " << type << (gelu ? ", gelu" : ", silu") << ", width " << width);
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
    const at::Tensor gate = (at::randn({5, width}, opts) * 4).to(type), up = at::randn({5, width}, opts).to(type);
    const at::Tensor want = (gelu ? at::gelu(gate, "tanh") : at::silu(gate)) * up;
    CHECK(steps_apart(fused_gated_activation(at::cat({gate, up}, -1), gelu), want) <= 1.01);
  }
}

TEST_CASE("fused RoPE equals x * cos + rotate_half(x) * sin") {
  if (!have_gpu()) return;
  at::manual_seed(5);
  for (const auto type : kTypes) {
    INFO("dtype " << type);
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
    const at::Tensor x = at::randn({2, 9, 3, 16}, opts).to(type);  // [batch, tokens, heads, dim]
    const at::Tensor angle = at::randn({2, 9, 16}, opts) * 10;
    const at::Tensor cos = angle.cos().to(type), sin = angle.sin().to(type);
    const at::Tensor xt = x.transpose(1, 2);  // [batch, heads, tokens, dim], as the decoder applies it
    const at::Tensor rotated = at::cat({-xt.narrow(-1, 8, 8), xt.narrow(-1, 0, 8)}, -1);
    const at::Tensor want = xt * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
    CHECK(steps_apart(fused_rope(x, cos, sin).transpose(1, 2), want) <= 1.01);
  }
}

TEST_CASE("the kernels read column blocks of a stacked output in place") {
  if (!have_gpu()) return;
  at::manual_seed(6);
  const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
  for (const auto type : kTypes) {
    INFO("dtype " << type);
    // A stacked q/k/v row: 4 heads of q, 2 of k, 2 of v, head_dim 16.
    const at::Tensor qkv = at::randn({2, 5, 8 * 16}, opts).to(type);
    const at::Tensor q = qkv.narrow(-1, 0, 64).view({2, 5, 4, 16}), k = qkv.narrow(-1, 64, 32).view({2, 5, 2, 16});
    const at::Tensor w = at::randn({16}, opts).to(type);
    CHECK(steps_apart(fused_rms_norm(q, w, 1e-6, 0.0), fused_rms_norm(q.contiguous(), w, 1e-6, 0.0)) == 0);
    const at::Tensor angle = at::randn({2, 5, 16}, opts);
    const at::Tensor cos = angle.cos().to(type), sin = angle.sin().to(type);
    CHECK(steps_apart(fused_rope(k, cos, sin), fused_rope(k.contiguous(), cos, sin)) == 0);
  }
}

TEST_CASE("a decoder with fused kernels gives the logits of the unfused one, every family") {
  if (!have_gpu()) return;
  for (const std::string kind : {"llama3", "qwen2", "qwen3", "gemma3", "gemma3_capped"})
  for (const auto type : {at::kFloat, at::kBFloat16}) {
    INFO("model " << kind << ", dtype " << type);
    const auto json = tiny::config_for(kind);
    const ModelConfig config = parse_model_config(json, "config.json");
    auto decoder = cuda_decoder(tiny::write_checkpoint(json, tiny::random_weights(config, 11)), type, true);
    const auto batch = TokenBatch::from_sequences({{1, 5, 9, 3, 7, 2, 8, 4, 6}, {3, 3, 1}});
    const at::Tensor fused = decoder->forward(batch, {{}, true}).logits;
    decoder->set_fused_ops(false);
    const at::Tensor plain = decoder->forward(batch, {{}, true}).logits;
    CHECK(tiny::relative_error(fused.cpu(), plain.cpu()) < (type == at::kFloat ? 1e-5 : 2e-2));
  }
}

TEST_CASE("fused residual addition + RMSNorm equals the sum and the norm of it, both weight conventions") {
  if (!have_gpu()) return;
  at::manual_seed(7);
  for (const auto type : kTypes)
  for (const double offset : {0.0, 1.0})
  for (const int64_t hidden : {200, 202, 5120}) {  // 202: not whole 16-byte vectors
    INFO("dtype " << type << ", offset " << offset << ", hidden " << hidden);
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
    const at::Tensor a = (at::randn({3, 5, hidden}, opts) * 3).to(type), b = at::randn({3, 5, hidden}, opts).to(type);
    const at::Tensor w = at::randn({hidden}, opts).to(type);
    const at::Tensor sum = a + b;
    const at::Tensor sf = sum.to(at::kFloat);
    const at::Tensor normed = sf * at::rsqrt(sf.pow(2).mean(-1, true) + 1e-6);
    const at::Tensor want = offset != 0 ? (normed * (w.to(at::kFloat) + offset)).to(type) : w * normed.to(type);
    const auto [got_sum, got] = fused_add_rms_norm(a, b, w, 1e-6, offset);
    CHECK(steps_apart(got_sum, sum) == 0);
    CHECK(steps_apart(got, want) <= 1.01);
  }
}

TEST_CASE("the matrix-vector kernel of one-row linear layers equals a float64 product, with and without bias") {
  if (!have_gpu()) return;
  at::manual_seed(8);
  // Tolerance of max |error| / max |result|: one rounding to the dtype plus float32 sums.
  const auto tolerance = [](at::ScalarType t) { return t == at::kBFloat16 ? 8e-3 : t == at::kHalf ? 1e-3 : 1e-5; };
  for (const auto type : kTypes)
  for (const int64_t in : {64, 520, 4096, 12288})  // 520: vectors past the unrolled loop
  for (const bool with_bias : {false, true}) {
    INFO("dtype " << type << ", in " << in << (with_bias ? ", bias" : ""));
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
    const int64_t out = 1003;  // not a multiple of the features per block
    const at::Tensor x = at::randn({1, 1, in}, opts).to(type), w = at::randn({out, in}, opts).to(type);
    const at::Tensor bias = with_bias ? at::randn({out}, opts).to(type) : at::Tensor();
    REQUIRE(fused_linear_apply(x, w));
    const at::Tensor got = fused_linear(x, w, bias);
    REQUIRE(got.sizes() == at::IntArrayRef({1, 1, out}));
    at::Tensor want = at::matmul(x.to(at::kDouble), w.to(at::kDouble).t());
    if (with_bias) want = want + bias.to(at::kDouble);
    CHECK(tiny::relative_error(got.cpu(), want.cpu()) < tolerance(type));
    // cuBLAS's own result is as far from float64.
    CHECK(tiny::relative_error(at::linear(x, w, bias).cpu(), want.cpu()) < tolerance(type));
  }
  const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  const at::Tensor w = at::randn({16, 64}, opts);
  CHECK(fused_linear_apply(at::randn({64}, opts), w));
  CHECK_FALSE(fused_linear_apply(at::randn({2, 64}, opts), w));                  // two rows: cuBLAS
  CHECK_FALSE(fused_linear_apply(at::randn({65}, opts).narrow(0, 1, 64).view({1, 64}), w));  // misaligned
  CHECK_FALSE(fused_linear_apply(at::randn({1, 64}, opts), at::randn({64, 16}, opts).t()));  // w not contiguous
  CHECK_FALSE(fused_linear_apply(at::randn({1, 64}, opts.dtype(at::kFloat)), w));  // dtypes differ
  CHECK_FALSE(fused_linear_apply(at::randn({1, 60}, opts), at::randn({16, 60}, opts)));  // 120-byte rows
}

TEST_CASE("the gated matrix-vector kernel equals act(gate) * up of the float64 gate/up products, SiLU and GELU") {
  if (!have_gpu()) return;
  at::manual_seed(12);
  // Tolerance of max |error| / max |result|: the gate and up sums rounded to the dtype (float32
  // sums may round the other way than float64 ones), then the activation and product rounded.
  const auto tolerance = [](at::ScalarType t) { return t == at::kBFloat16 ? 1.6e-2 : t == at::kHalf ? 2e-3 : 1e-5; };
  for (const auto type : kTypes)
  for (const bool gelu : {false, true})
  for (const int64_t in : {64, 520, 4096}) {  // 64: lanes without a whole vector; 520: past the unrolled loop
    INFO("dtype " << type << (gelu ? ", gelu" : ", silu") << ", in " << in);
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
    const int64_t width = 1003;  // not a multiple of the features per block
    const at::Tensor x = at::randn({1, 1, in}, opts).to(type);
    const at::Tensor gate_up = (at::randn({2 * width, in}, opts) * (2.0 / std::sqrt(static_cast<double>(in)))).to(type);
    REQUIRE(fused_linear_apply(x, gate_up));
    const at::Tensor got = fused_gated_linear(x, gate_up, gelu);
    REQUIRE(got.sizes() == at::IntArrayRef({1, 1, width}));
    // The unfused path: the stacked product rounded to the dtype, act(gate) rounded, times up.
    const at::Tensor products = at::matmul(x.to(at::kDouble), gate_up.to(at::kDouble).t()).to(type);
    const at::Tensor gate = products.narrow(-1, 0, width), up = products.narrow(-1, width, width);
    const at::Tensor want = (gelu ? at::gelu(gate, "tanh") : at::silu(gate)) * up;
    CHECK(tiny::relative_error(got.cpu(), want.cpu()) < tolerance(type));
    // The two kernels it replaces (matrix-vector, then the gated activation) are as close.
    const at::Tensor two_kernels = fused_gated_activation(fused_linear(x, gate_up, at::Tensor()), gelu);
    CHECK(tiny::relative_error(two_kernels.cpu(), want.cpu()) < tolerance(type));
  }
  const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  CHECK_THROWS_WITH(fused_gated_linear(at::randn({1, 64}, opts), at::randn({15, 64}, opts), false),
                    Catch::Contains("15 rows"));
}

TEST_CASE("fused attention inputs: q/k norms, RoPE and the cache writes of one kernel equal the separate ops") {
  if (!have_gpu()) return;
  at::manual_seed(9);
  const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
  for (const auto type : kTypes)
  for (const int64_t D : {64, 128, 256})
  for (const int norms : {0, 1, 2}) {  // none; Llama-style weights (offset 0); Gemma's 1 + w
    INFO("dtype " << type << ", head_dim " << D << ", norms " << norms);
    const int64_t B = 2, T = 3, H = 4, KV = 2;
    const double offset = norms == 2 ? 1.0 : 0.0;
    const at::Tensor qkv = (at::randn({B, T, (H + 2 * KV) * D}, opts) * 2).to(type);
    const at::Tensor q_norm = norms ? at::randn({D}, opts).to(type) : at::Tensor();
    const at::Tensor k_norm = norms ? at::randn({D}, opts).to(type) : at::Tensor();
    const at::Tensor angle = at::randn({B, T, D}, opts) * 10;
    const at::Tensor cos = angle.cos().to(type), sin = angle.sin().to(type);
    // The unfused ops: per-head RMSNorm (ATen), then RoPE (ATen).
    const auto norm = [&](const at::Tensor& x, const at::Tensor& w) {
      if (!w.defined()) return x;
      const at::Tensor xf = x.to(at::kFloat);
      const at::Tensor normed = xf * at::rsqrt(xf.pow(2).mean(-1, true) + 1e-6);
      return offset != 0 ? (normed * (w.to(at::kFloat) + offset)).to(type) : w * normed.to(type);
    };
    const auto rope = [&](const at::Tensor& x) {  // x [B, T, heads, D]
      const at::Tensor rotated = at::cat({-x.narrow(-1, D / 2, D / 2), x.narrow(-1, 0, D / 2)}, -1);
      return x * cos.unsqueeze(2) + rotated * sin.unsqueeze(2);
    };
    const at::Tensor q_want = rope(norm(qkv.narrow(-1, 0, H * D).view({B, T, H, D}), q_norm));
    const at::Tensor k_want = rope(norm(qkv.narrow(-1, H * D, KV * D).view({B, T, KV, D}), k_norm));
    const at::Tensor v_want = qkv.narrow(-1, (H + KV) * D, KV * D).view({B, T, KV, D});

    // Without norms the kernel rounds the same values as the ATen ops: at most one step apart per
    // element. With them the float32 sum of squares is split differently, so a normed value may
    // round one step off before RoPE, which a sum of two products can magnify relative to a small
    // result: compared at the scale of the whole tensor then (two steps of the dtype).
    const double scale_tolerance = type == at::kBFloat16 ? 2.0 / 128 : type == at::kHalf ? 2.0 / 1024 : 1e-5;
    const auto close = [&](const at::Tensor& got, const at::Tensor& want) {
      if (norms == 0) return steps_apart(got, want) <= 1.01;
      return tiny::relative_error(got.cpu(), want.cpu()) < scale_tolerance;
    };
    const auto [q, k] = fused_attention_inputs(qkv, H, KV, D, q_norm, k_norm, 1e-6, offset, cos, sin, nullptr);
    CHECK(close(q, q_want));
    CHECK(close(k, k_want));

    // With a cache: token t's k and v land in row rows[t]; a negative row is skipped.
    const std::vector<int64_t> row_list = {7, -1, 0, 3, 4, -1};
    KvCacheRows cache{at::zeros({8, KV, D}, opts.dtype(type)), at::zeros({8, KV, D}, opts.dtype(type)),
                      at::tensor(row_list, at::kLong).to(at::kCUDA)};
    const auto [q2, no_k] = fused_attention_inputs(qkv, H, KV, D, q_norm, k_norm, 1e-6, offset, cos, sin, &cache);
    CHECK_FALSE(no_k.defined());
    CHECK(close(q2, q_want));  // every token's q, padding included
    at::Tensor written = at::zeros({8}, at::kBool);
    for (int64_t t = 0; t < B * T; ++t) {
      if (row_list[t] < 0) continue;
      CHECK(close(cache.keys[row_list[t]], k_want.flatten(0, 1)[t]));
      CHECK(steps_apart(cache.values[row_list[t]], v_want.flatten(0, 1)[t]) == 0);
      written[row_list[t]] = true;
    }
    for (int64_t r = 0; r < 8; ++r)
      if (!written[r].item<bool>()) CHECK(cache.keys[r].abs().max().item<double>() == 0);  // untouched
  }
}

TEST_CASE("fused decode attention equals the explicit masked attention over each row's cache slot") {
  if (!have_gpu()) return;
  at::manual_seed(10);
  const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
  // Against the same attention in float64 of the same inputs: the kernel keeps scores,
  // probabilities and sums in float32 and rounds its result once, so it is within about one
  // rounding step of the dtype at the result's scale (the explicit path in bfloat16 is not: it
  // rounds the scores and the probabilities to bfloat16 too, as HF eager does).
  const auto tolerance = [](at::ScalarType t) { return t == at::kBFloat16 ? 8e-3 : t == at::kHalf ? 1.5e-3 : 2e-5; };
  const std::vector<std::pair<int64_t, int64_t>> head_counts = {{4, 4}, {8, 4}, {8, 2}, {16, 2}, {6, 2}};
  for (const auto type : kTypes)
  for (const int64_t D : {64, 128, 256})
  for (const auto& [H, KV] : head_counts)
  for (const int64_t window : {0, 5})
  for (const double softcap : {0.0, 30.0}) {
    INFO("dtype " << type << ", head_dim " << D << ", heads " << H << "/" << KV << ", window " << window
                  << ", softcap " << softcap);
    const int64_t S = 3, max_len = 300, key_len = 272;
    const at::Tensor keys = at::randn({S, max_len, KV, D}, opts).to(type);
    const at::Tensor values = at::randn({S, max_len, KV, D}, opts).to(type);
    const at::Tensor q = (at::randn({2, H, D}, opts) * 2).to(type);
    const std::vector<int64_t> positions = {37, 270};
    const AttentionParams params{1.0 / std::sqrt(static_cast<double>(D)), softcap};
    // The kernel's own split count; one range (the partial pass writes the result, no merge); three
    // ranges of 96 keys (the row at position 37 sees none of the last two).
    for (const int64_t splits : {0, 1, 3})
    for (const bool consecutive : {false, true}) {
      const std::vector<int64_t> slots = consecutive ? std::vector<int64_t>{1, 2} : std::vector<int64_t>{2, 0};
      INFO((consecutive ? "consecutive slots" : "slots 2, 0") << ", splits " << splits);
      // Keys past a row's position are never read: NaN there would spread into its result.
      at::Tensor poisoned_keys = keys.clone(), poisoned_values = values.clone();
      for (int64_t b = 0; b < 2; ++b) {
        poisoned_keys[slots[b]].narrow(0, positions[b] + 1, max_len - positions[b] - 1).fill_(NAN);
        poisoned_values[slots[b]].narrow(0, positions[b] + 1, max_len - positions[b] - 1).fill_(NAN);
      }
      DecodeAttentionRequest r;
      r.q = q;
      r.keys = poisoned_keys;
      r.values = poisoned_values;
      if (consecutive) r.first_slot = 1;
      else r.slots = at::tensor(slots, at::kLong).to(at::kCUDA);
      r.positions = at::tensor(positions, at::kLong).to(at::kCUDA);
      r.key_len = key_len;
      r.window = window;
      r.scale = params.scale;
      r.softcap = softcap;
      r.splits = splits;
      REQUIRE(fused_decode_attention_apply(q, KV));
      const at::Tensor got = fused_decode_attention(r);
      for (int64_t b = 0; b < 2; ++b) {
        const auto f64 = [](const at::Tensor& t) { return t.to(at::kDouble); };
        const at::Tensor k = f64(keys[slots[b]].narrow(0, 0, key_len).transpose(0, 1).unsqueeze(0));  // [1, KV, K, D]
        const at::Tensor v = f64(values[slots[b]].narrow(0, 0, key_len).transpose(0, 1).unsqueeze(0));
        const at::Tensor mask = position_mask(at::tensor({positions[b]}, at::kLong).view({1, 1}).to(at::kCUDA),
                                              key_len, window);
        const at::Tensor want = attention_explicit(f64(q[b]).view({1, H, 1, D}), k, v, mask, params).view({H, D});
        CHECK(tiny::relative_error(got[b].cpu(), want.cpu()) < tolerance(type));
      }
    }
  }
  const auto bf = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  CHECK_FALSE(fused_decode_attention_apply(at::randn({1, 4, 96}, bf), 4));   // head_dim 96
  CHECK_FALSE(fused_decode_attention_apply(at::randn({1, 32, 128}, bf), 2));  // 16 query heads per kv head
}

TEST_CASE("cached prefill and decode steps with the fused work give the unfused logits, every family") {
  if (!have_gpu()) return;
  for (const std::string kind : {"llama3", "qwen2", "qwen3", "gemma3", "gemma3_capped"}) {
    INFO("model " << kind);
    auto json = tiny::config_for(kind);
    json["head_dim"] = 64;  // a size the one-kernel attention inputs and decode attention take
    const ModelConfig config = parse_model_config(json, "config.json");
    const std::string dir = tiny::write_checkpoint(json, tiny::random_weights(config, 12));
    const int64_t V = config.vocab_size;
    const auto run = [&](at::ScalarType type, bool fused) {
      auto decoder = cuda_decoder(dir, type, fused);
      KvCache cache = decoder->make_kv_cache(2, 24);
      std::vector<at::Tensor> logits;
      // Prefill of unequal lengths (padding rows skip the cache), then one token per call, then
      // decode steps over both slots, then a single slot alone (the matrix-vector kernel).
      logits.push_back(decoder->forward_cached(cache, {0, 1}, {tiny::token_sequence(1, 7, V), tiny::token_sequence(2, 3, V)}).cpu());
      for (int step = 0; step < 3; ++step)
        logits.push_back(decoder->forward_cached(cache, {1, 0}, {{(step * 5 + 1) % V}, {(step * 3 + 2) % V}}).cpu());
      for (int step = 0; step < 3; ++step) {
        const std::vector<int64_t> ids = {(step * 7 + 4) % V, (step + 9) % V};
        const std::vector<int64_t> positions = {cache.length(0), cache.length(1)};
        const int64_t longest = std::max(positions[0], positions[1]) + 1;
        logits.push_back(decoder->decode_step(cache, at::tensor(ids, at::kLong).to(at::kCUDA),
                                              at::tensor(positions, at::kLong).to(at::kCUDA),
                                              decoder->attended_key_length(longest, 24)).cpu());
        for (int64_t s = 0; s < 2; ++s) cache.set_length(s, cache.length(s) + 1);
      }
      for (int step = 0; step < 2; ++step)
        logits.push_back(decoder->forward_cached(cache, {1}, {{(step * 11 + 5) % V}}).cpu());
      return logits;
    };
    const auto reference = run(at::kFloat, false);
    const auto fused32 = run(at::kFloat, true), fused16 = run(at::kBFloat16, true), plain16 = run(at::kBFloat16, false);
    for (size_t i = 0; i < reference.size(); ++i) {
      INFO("call " << i);
      CHECK(tiny::relative_error(fused32[i], reference[i]) < 1e-5);
      // In bfloat16 the two paths round at different places (the fused decode attention keeps
      // scores and probabilities in float32, the unfused one rounds them to bfloat16), so each is
      // held to the float32 result instead of to the other: the fused one within the tolerance
      // of the bfloat16 goldens against HF float32, and at most 0.02 further than the unfused one
      // (on an H200 the two were 0.016-0.040 from float32, at most 0.01 apart in how far).
      const double fused_error = tiny::relative_error(fused16[i], reference[i]);
      const double plain_error = tiny::relative_error(plain16[i], reference[i]);
      CHECK(fused_error < 5e-2);
      CHECK(fused_error <= plain_error + 2e-2);
    }
  }
}

TEST_CASE("the matrix-vector kernel with the residual addition equals the layer plus the residual") {
  if (!have_gpu()) return;
  at::manual_seed(21);
  for (const auto type : kTypes)
  for (const int64_t in : {64, 520, 4096})
  for (const int64_t out : {1003, 4096})  // 1003: the last block has features to spare
  for (const bool with_bias : {false, true}) {
    INFO("dtype " << type << ", in " << in << ", out " << out << (with_bias ? ", bias" : ""));
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
    const at::Tensor x = at::randn({1, 1, in}, opts).to(type), w = at::randn({out, in}, opts).to(type);
    const at::Tensor bias = with_bias ? at::randn({out}, opts).to(type) : at::Tensor();
    const at::Tensor residual = (at::randn({1, 1, out}, opts) * 4).to(type);
    const ResidualRow got = fused_linear_add(x, w, bias, residual);
    REQUIRE(got.h.sizes() == at::IntArrayRef({1, 1, out}));
    // The same sums as the matrix-vector kernel, rounded, then the addition ATen rounds: equal.
    CHECK(steps_apart(got.h, residual + fused_linear(x, w, bias)) == 0);
    // One sum of squares per 8 features; together the row's, up to float32 summation.
    REQUIRE(got.squares.scalar_type() == at::kFloat);
    CHECK(got.squares.numel() == (out + 7) / 8);
    const double total = got.squares.to(at::kDouble).sum().item<double>();
    const double want = got.h.to(at::kDouble).pow(2).sum().item<double>();
    CHECK(std::abs(total - want) <= 1e-5 * want);
  }
  const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  CHECK_THROWS_WITH(fused_linear_add(at::randn({1, 64}, opts), at::randn({16, 64}, opts), {}, at::randn({15}, opts)),
                    Catch::Contains("the residual has 15 elements for 16 outputs"));
}

TEST_CASE("the normed matrix-vector kernels equal the norm kernel followed by the layer, both weight conventions") {
  if (!have_gpu()) return;
  at::manual_seed(22);
  // Tolerances as for the matrix-vector kernels against float64 (max |error| / max |result|).
  const auto tolerance = [](at::ScalarType t) { return t == at::kBFloat16 ? 1.6e-2 : t == at::kHalf ? 2e-3 : 1e-5; };
  for (const auto type : kTypes)
  for (const double offset : {0.0, 1.0})
  for (const int64_t in : {64, 520, 4096}) {
    INFO("dtype " << type << ", offset " << offset << ", in " << in);
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
    const int64_t out = 1003;
    const at::Tensor h = (at::randn({1, 1, in}, opts) * 3).to(type);
    const at::Tensor norm_w = (at::rand({in}, opts) + 0.5).to(type);
    const at::Tensor w = (at::randn({out, in}, opts) / std::sqrt(static_cast<double>(in))).to(type);
    const at::Tensor gate_up = (at::randn({2 * out, in}, opts) * (2.0 / std::sqrt(static_cast<double>(in)))).to(type);
    const at::Tensor bias = at::randn({out}, opts).to(type);
    // Sums of squares over blocks of 8 elements, as a fused_linear_add of h would leave them.
    const ResidualRow row{h, h.to(at::kFloat).pow(2).view({-1, 8}).sum(1)};
    REQUIRE(fused_normed_linear_apply(h, norm_w, w));
    // The reference: the ATen RMSNorm expression, then float64 products.
    const at::Tensor hf = h.to(at::kFloat);
    const at::Tensor normed = hf * at::rsqrt(hf.pow(2).mean(-1, true) + 1e-6);
    const at::Tensor x = offset != 0 ? (normed * (norm_w.to(at::kFloat) + offset)).to(type) : norm_w * normed.to(type);
    const at::Tensor want = at::matmul(x.to(at::kDouble), w.to(at::kDouble).t()) + bias.to(at::kDouble);
    const at::Tensor got = fused_normed_linear(row, norm_w, 1e-6, offset, w, bias);
    REQUIRE(got.sizes() == at::IntArrayRef({1, 1, out}));
    CHECK(tiny::relative_error(got.cpu(), want.cpu()) < tolerance(type));
    const at::Tensor two_kernels = fused_linear(fused_rms_norm(h, norm_w, 1e-6, offset), w, bias);
    CHECK(tiny::relative_error(got.cpu(), two_kernels.cpu()) < tolerance(type));
    for (const bool gelu : {false, true}) {
      INFO((gelu ? "gelu" : "silu"));
      const at::Tensor products = at::matmul(x.to(at::kDouble), gate_up.to(at::kDouble).t()).to(type);
      const at::Tensor gate = products.narrow(-1, 0, out), up = products.narrow(-1, out, out);
      const at::Tensor gated_want = (gelu ? at::gelu(gate, "tanh") : at::silu(gate)) * up;
      const at::Tensor gated = fused_normed_gated_linear(row, norm_w, 1e-6, offset, gate_up, gelu);
      REQUIRE(gated.sizes() == at::IntArrayRef({1, 1, out}));
      CHECK(tiny::relative_error(gated.cpu(), gated_want.cpu()) < tolerance(type));
      const at::Tensor gated_two = fused_gated_linear(fused_rms_norm(h, norm_w, 1e-6, offset), gate_up, gelu);
      CHECK(tiny::relative_error(gated.cpu(), gated_two.cpu()) < tolerance(type));
    }
  }
  const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
  // A normed row lives in a block's shared memory: 48 KiB at most.
  CHECK(fused_normed_linear_apply(at::randn({1, 12288}, opts), at::ones({12288}, opts), at::randn({8, 12288}, opts)));
  CHECK_FALSE(fused_normed_linear_apply(at::randn({1, 12800}, opts), at::ones({12800}, opts), at::randn({8, 12800}, opts)));
  // The norm weight in the row's dtype, one per element.
  CHECK_FALSE(fused_normed_linear_apply(at::randn({1, 64}, opts), at::ones({64}, opts.dtype(at::kBFloat16)),
                                        at::randn({8, 64}, opts)));
  const at::Tensor h = at::randn({1, 64}, opts);
  CHECK_THROWS_WITH(fused_normed_linear({h, at::ones({8}, opts)}, at::ones({60}, opts), 1e-6, 0.0,
                                        at::randn({16, 64}, opts), {}),
                    Catch::Contains("the norm weight has 60 elements for rows of 64"));
}

TEST_CASE("folded norms give the logits of the separate kernels in one-sequence decoding, every family") {
  if (!have_gpu()) return;
  for (const std::string kind : {"llama3", "qwen2", "qwen3", "gemma3"}) {
    INFO("model " << kind);
    auto json = tiny::config_for(kind);
    json["head_dim"] = 64;
    const ModelConfig config = parse_model_config(json, "config.json");
    const std::string dir = tiny::write_checkpoint(json, tiny::random_weights(config, 13));
    const int64_t V = config.vocab_size;
    for (const auto type : {at::kFloat, at::kBFloat16}) {
      INFO("dtype " << type);
      int64_t folded = 0;
      const auto run = [&](bool fold) {
        auto decoder = cuda_decoder(dir, type, true);
        decoder->set_fold_norms(fold);
        KvCache cache = decoder->make_kv_cache(1, 24);
        std::vector<at::Tensor> logits;
        logits.push_back(decoder->forward_cached(cache, {0}, {tiny::token_sequence(3, 7, V)}).cpu());
        for (int step = 0; step < 3; ++step)
          logits.push_back(decoder->forward_cached(cache, {0}, {{(step * 5 + 1) % V}}).cpu());
        for (int step = 0; step < 3; ++step) {
          const int64_t position = cache.length(0);
          logits.push_back(decoder->decode_step(cache, at::tensor(std::vector<int64_t>{(step * 7 + 4) % V}, at::kLong).to(at::kCUDA),
                                                at::tensor(std::vector<int64_t>{position}, at::kLong).to(at::kCUDA),
                                                decoder->attended_key_length(position + 1, 24)).cpu());
          cache.set_length(0, position + 1);
        }
        if (fold) folded = decoder->folded_blocks();
        return logits;
      };
      const auto plain = run(false), fold = run(true);
      // Sandwich norms (Gemma 3) norm the o and down outputs before the addition: nothing folds.
      if (config.sandwich_norms) {
        CHECK(folded == 0);
      } else {
        CHECK(folded == 6 * config.num_layers);  // the 6 one-token calls, every block
      }
      for (size_t i = 0; i < plain.size(); ++i) {
        INFO("call " << i);
        // The norm's sum of squares is added in another order: float32 rounding, which in
        // bfloat16 can move a normed element by one step.
        CHECK(tiny::relative_error(fold[i], plain[i]) < (type == at::kFloat ? 1e-5 : 2e-2));
      }
    }
  }
}

TEST_CASE("split linear: the partial sums add up to the layer, and the norm after it adds them up") {
  if (!have_gpu()) return;
  at::manual_seed(14);
  const auto f32 = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
  for (const auto type : kTypes)
  for (const int64_t rows : {2, 5, 32})
  for (const auto& [out, in] : std::vector<std::pair<int64_t, int64_t>>{{1000, 64}, {4096, 4096}, {256, 12288}}) {
    INFO("dtype " << type << ", rows " << rows << ", out " << out << ", in " << in);
    const at::Tensor x = at::randn({rows, 1, in}, f32).to(type), w = (at::randn({out, in}, f32) * 0.05).to(type);
    REQUIRE(split_linear_apply(x, w));
    const at::Tensor parts = split_linear(x, w);
    REQUIRE(parts.sizes() == at::IntArrayRef({4, rows, 1, out}));
    REQUIRE(parts.scalar_type() == at::kFloat);
    // The partials are float32 sums of exact products: only their order separates them from float64.
    const at::Tensor want = at::matmul(x.to(at::kDouble), w.to(at::kDouble).t());
    CHECK(tiny::relative_error(parts.sum(0).cpu(), want.cpu()) < 1e-5);
    // The norm kernel adds them up in float32 and rounds once, as the unsplit layer's output is
    // rounded before the residual addition.
    const at::Tensor a = (at::randn({rows, 1, out}, f32) * 3).to(type), norm_w = at::randn({out}, f32).to(type);
    REQUIRE(fused_add_partials_rms_norm_apply(a, parts));
    for (const double offset : {0.0, 1.0}) {
      const auto [sum, normed] = fused_add_partials_rms_norm(a, parts, norm_w, 1e-6, offset);
      const auto [want_sum, want_normed] = fused_add_rms_norm(a, parts.sum(0).to(type), norm_w, 1e-6, offset);
      CHECK(steps_apart(sum, want_sum) <= 1.01);
      CHECK(steps_apart(normed, want_normed) <= 2.02);
    }
  }
  // What it does not take: one row, more than 32, inputs that do not cut into 16-byte slices.
  const auto bf = f32.dtype(at::kBFloat16);
  CHECK_FALSE(split_linear_apply(at::randn({1, 64}, bf), at::randn({8, 64}, bf)));
  CHECK_FALSE(split_linear_apply(at::randn({33, 64}, bf), at::randn({8, 64}, bf)));
  CHECK_FALSE(split_linear_apply(at::randn({4, 48}, bf), at::randn({8, 48}, bf)));
  CHECK(split_linear_apply(at::randn({4, 48}, f32), at::randn({8, 48}, f32)));
  CHECK_FALSE(fused_add_partials_rms_norm_apply(at::randn({4, 64}, bf), at::zeros({2, 4, 64}, f32)));
  CHECK_THROWS_WITH(split_linear(at::randn({1, 64}, bf), at::randn({8, 64}, bf)),
                    Catch::Contains("are not operands of the split GEMM"));
}

TEST_CASE("split o and down layers give the logits of the unsplit ones in batched decoding, every family") {
  if (!have_gpu()) return;
  for (const std::string kind : {"llama3", "qwen2", "qwen3", "gemma3"}) {
    INFO("model " << kind);
    auto json = tiny::config_for(kind);
    json["head_dim"] = 64;
    json["intermediate_size"] = 64;  // down's inputs in 16-byte slices in every dtype
    const ModelConfig config = parse_model_config(json, "config.json");
    const std::string dir = tiny::write_checkpoint(json, tiny::random_weights(config, 15));
    const int64_t V = config.vocab_size;
    for (const auto type : {at::kFloat, at::kBFloat16}) {
      INFO("dtype " << type);
      int64_t split = 0;
      const auto run = [&](bool on) {
        auto decoder = cuda_decoder(dir, type, true);
        decoder->set_split_linear(on);
        KvCache cache = decoder->make_kv_cache(3, 24);
        std::vector<at::Tensor> logits;
        // A prefill of 3 x 5 rows (15: split too; over 32 would not be), one token each, then
        // decode steps of the three slots.
        logits.push_back(decoder->forward_cached(cache, {0, 1, 2}, {tiny::token_sequence(1, 5, V),
                                                                     tiny::token_sequence(2, 4, V),
                                                                     tiny::token_sequence(3, 2, V)}).cpu());
        logits.push_back(decoder->forward_cached(cache, {2, 0, 1}, {{5 % V}, {7 % V}, {11 % V}}).cpu());
        for (int step = 0; step < 3; ++step) {
          std::vector<int64_t> ids, positions;
          int64_t longest = 0;
          for (int64_t s = 0; s < 3; ++s) {
            ids.push_back((step * 7 + 3 * s + 4) % V);
            positions.push_back(cache.length(s));
            longest = std::max(longest, cache.length(s) + 1);
          }
          logits.push_back(decoder->decode_step(cache, at::tensor(ids, at::kLong).to(at::kCUDA),
                                                at::tensor(positions, at::kLong).to(at::kCUDA),
                                                decoder->attended_key_length(longest, 24)).cpu());
          for (int64_t s = 0; s < 3; ++s) cache.set_length(s, cache.length(s) + 1);
        }
        if (on) split = decoder->split_blocks();
        return logits;
      };
      const auto plain = run(false), split_run = run(true);
      // Sandwich norms (Gemma 3) norm the o and down outputs before the addition: nothing splits.
      CHECK(split == (config.sandwich_norms ? 0 : 5 * config.num_layers));  // the 5 calls, every block
      for (size_t i = 0; i < plain.size(); ++i) {
        INFO("call " << i);
        // The layers' float32 sums are added in another order: in bfloat16 an output can round
        // one step apart.
        CHECK(tiny::relative_error(split_run[i], plain[i]) < (type == at::kFloat ? 1e-5 : 2e-2));
      }
    }
  }
}
