// The fused CUDA kernels against the ATen expressions they replace (CUDA builds with a GPU; the
// CPU build has no kernels and says so).
#include "gpujob/model/fused_ops.hpp"
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

}  // namespace

TEST_CASE("fused RMSNorm equals the float32 ATen expression, both weight conventions") {
  if (!have_gpu()) return;
  at::manual_seed(3);
  for (const auto type : kTypes)
  for (const double offset : {0.0, 1.0}) {
    INFO("dtype " << type << ", offset " << offset);
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(type);
    const at::Tensor x = (at::randn({6, 7, 96}, opts.dtype(at::kFloat)) * 3).to(type);
    const at::Tensor w = at::randn({96}, opts.dtype(at::kFloat)).to(type);
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
  for (const bool gelu : {false, true}) {
    INFO("dtype " << type << (gelu ? ", gelu" : ", silu"));
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
    const at::Tensor gate = (at::randn({5, 333}, opts) * 4).to(type), up = at::randn({5, 333}, opts).to(type);
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
    LoadOptions load;
    load.device = at::Device(at::kCUDA, 0);
    load.dtype = type;
    auto decoder = Decoder::load(tiny::write_checkpoint(json, tiny::random_weights(config, 11)), load);
    const auto batch = TokenBatch::from_sequences({{1, 5, 9, 3, 7, 2, 8, 4, 6}, {3, 3, 1}});
    decoder->set_fused_ops(true);
    const at::Tensor fused = decoder->forward(batch, {{}, true}).logits;
    decoder->set_fused_ops(false);
    const at::Tensor plain = decoder->forward(batch, {{}, true}).logits;
    CHECK(tiny::relative_error(fused.cpu(), plain.cpu()) < (type == at::kFloat ? 1e-5 : 2e-2));
  }
}
