// Test helpers: tiny random checkpoints of every supported family and a float64 reference decoder.
#pragma once

#include "gpujob/model/decoder.hpp"
#include "gpujob/model/model_config.hpp"
#include "gpujob/model/safetensors.hpp"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace tiny {

using Weights = std::map<std::string, at::Tensor>;

// Directories made by make_temp_dir, removed when the test program exits.
struct TempDirs {
  std::vector<std::string> paths;
  ~TempDirs() {
    std::error_code ignored;
    for (const auto& p : paths) std::filesystem::remove_all(p, ignored);
  }
};

inline std::string make_temp_dir() {
  static TempDirs dirs;
  char pattern[] = "/tmp/gpujob_model_test_XXXXXX";
  const char* dir = ::mkdtemp(pattern);
  if (dir == nullptr) throw std::runtime_error("mkdtemp failed");
  dirs.paths.push_back(dir);
  return dir;
}

inline void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump(2);
}

// Config documents of the tiny test models. Sizes are small but keep every switch distinct:
// GQA, head_dim != hidden / heads, rope scaling that changes frequencies, a Gemma window of 4.
inline nlohmann::json config_for(const std::string& kind) {
  using nlohmann::json;
  json c = {{"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 3},
            {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 61},
            {"rms_norm_eps", 1e-6}, {"max_position_embeddings", 128}, {"eos_token_id", 2},
            {"bos_token_id", 1}};
  if (kind == "llama3") {  // transformers 5 form
    c["architectures"] = {"LlamaForCausalLM"};
    c["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 10000.0}, {"factor", 8.0},
                            {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 16}};
    c["tie_word_embeddings"] = false;
  } else if (kind == "llama_linear_tied") {  // published form
    c["architectures"] = {"LlamaForCausalLM"};
    c["rope_theta"] = 500.0;
    c["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    c["tie_word_embeddings"] = true;
  } else if (kind == "qwen2") {
    c["architectures"] = {"Qwen2ForCausalLM"};
    c["rope_theta"] = 1000.0;
    c["tie_word_embeddings"] = false;
  } else if (kind == "qwen3") {
    c["architectures"] = {"Qwen3ForCausalLM"};
    c["head_dim"] = 16;
    c["rope_theta"] = 1000.0;
    c["tie_word_embeddings"] = true;
  } else if (kind == "gemma3" || kind == "gemma3_capped" || kind == "gemma3_mm") {
    c["architectures"] = {"Gemma3ForCausalLM"};
    c["num_hidden_layers"] = 4;
    c["head_dim"] = 16;
    c["query_pre_attn_scalar"] = 12;
    c["sliding_window"] = 4;
    c["sliding_window_pattern"] = 3;  // layers 0, 1, 3 local; layer 2 global
    c["rope_theta"] = 1000.0;
    c["rope_local_base_freq"] = 100.0;
    c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
    c["hidden_activation"] = "gelu_pytorch_tanh";
    if (kind == "gemma3_capped") {
      c["final_logit_softcapping"] = 3.0;
      c["attn_logit_softcapping"] = 2.0;
    }
    if (kind == "gemma3_mm") {
      json text = c;
      text.erase("architectures");
      text.erase("eos_token_id");
      c = {{"architectures", {"Gemma3ForConditionalGeneration"}}, {"text_config", text},
           {"eos_token_id", {1, 2}}, {"vision_config", {{"hidden_size", 8}}}};
    }
  } else {
    throw std::runtime_error("unknown tiny model " + kind);
  }
  return c;
}

// Random weights under HF names (float32) for a parsed config, with the causal-LM layout.
inline Weights random_weights(const gpujob::model::ModelConfig& c, uint64_t seed) {
  at::manual_seed(seed);
  const int64_t H = c.hidden_size, D = c.head_dim, I = c.intermediate_size, V = c.vocab_size;
  const bool gemma = c.norm_offset != 0.0;
  auto mat = [](int64_t rows, int64_t cols) {
    return at::randn({rows, cols}, at::kFloat) / std::sqrt(static_cast<double>(cols));
  };
  auto norm = [&](int64_t n) {  // around 1 as an effective scale either way
    return gemma ? at::randn({n}, at::kFloat) * 0.2 : 1.0 + at::randn({n}, at::kFloat) * 0.2;
  };
  Weights w;
  w["model.embed_tokens.weight"] = at::randn({V, H}, at::kFloat) * (gemma ? 0.2 : 1.0);
  w["model.norm.weight"] = norm(H);
  if (!c.tie_word_embeddings) w["lm_head.weight"] = mat(V, H);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    w[p + "input_layernorm.weight"] = norm(H);
    w[p + "post_attention_layernorm.weight"] = norm(H);
    if (c.sandwich_norms) {
      w[p + "pre_feedforward_layernorm.weight"] = norm(H);
      w[p + "post_feedforward_layernorm.weight"] = norm(H);
    }
    w[p + "self_attn.q_proj.weight"] = mat(c.n_heads * D, H);
    w[p + "self_attn.k_proj.weight"] = mat(c.n_kv_heads * D, H);
    w[p + "self_attn.v_proj.weight"] = mat(c.n_kv_heads * D, H);
    w[p + "self_attn.o_proj.weight"] = mat(H, c.n_heads * D);
    if (c.qkv_bias) {
      w[p + "self_attn.q_proj.bias"] = at::randn({c.n_heads * D}) * 0.1;
      w[p + "self_attn.k_proj.bias"] = at::randn({c.n_kv_heads * D}) * 0.1;
      w[p + "self_attn.v_proj.bias"] = at::randn({c.n_kv_heads * D}) * 0.1;
    }
    if (c.qk_norm) {
      w[p + "self_attn.q_norm.weight"] = norm(D);
      w[p + "self_attn.k_norm.weight"] = norm(D);
    }
    w[p + "mlp.gate_proj.weight"] = mat(I, H);
    w[p + "mlp.up_proj.weight"] = mat(I, H);
    w[p + "mlp.down_proj.weight"] = mat(H, I);
  }
  return w;
}

// Renames causal-LM names to another layout ("published" or "v5" multimodal) and adds vision tensors.
inline Weights to_multimodal(const Weights& w, const std::string& layout) {
  Weights out;
  for (const auto& kv : w) {
    std::string name = kv.first;
    if (name.rfind("model.", 0) == 0)
      name = (layout == "published" ? "language_model.model." : "model.language_model.") + name.substr(6);
    else if (name == "lm_head.weight" && layout == "published")
      name = "language_model.lm_head.weight";
    out[name] = kv.second;
  }
  const std::string v = layout == "published" ? "" : "model.";
  out[v + "vision_tower.vision_model.embeddings.patch_embedding.weight"] = at::randn({8, 3, 2, 2});
  out[v + "multi_modal_projector.mm_input_projection_weight"] = at::randn({8, 32});
  return out;
}

// Writes config.json and model.safetensors (or two shards plus an index) into a new directory.
inline std::string write_checkpoint(const nlohmann::json& config, const Weights& w, bool sharded = false) {
  const std::string dir = make_temp_dir();
  write_json(dir + "/config.json", config);
  if (!sharded) {
    gpujob::model::write_safetensors(dir + "/model.safetensors", w);
    return dir;
  }
  Weights a, b;
  nlohmann::json map = nlohmann::json::object();
  size_t i = 0;
  for (const auto& kv : w) {
    const bool first = i++ < w.size() / 2;
    (first ? a : b)[kv.first] = kv.second;
    map[kv.first] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  gpujob::model::write_safetensors(dir + "/model-00001-of-00002.safetensors", a);
  gpujob::model::write_safetensors(dir + "/model-00002-of-00002.safetensors", b);
  write_json(dir + "/model.safetensors.index.json", {{"metadata", {{"total_size", 0}}}, {"weight_map", map}});
  return dir;
}

// ---------------------------------------------------------------------------------------------
// float64 reference: a direct transcription of the published model definitions, with explicit
// loops for rope and attention, independent of the decoder's code paths.
// ---------------------------------------------------------------------------------------------

inline std::vector<double> reference_inv_freq(const gpujob::model::RopeSpec& r, int64_t dim) {
  std::vector<double> out;
  for (int64_t i = 0; i < dim; i += 2) {
    double f = 1.0 / std::pow(r.theta, static_cast<double>(i) / dim);
    if (r.type == gpujob::model::RopeType::kLinear) f /= r.factor;
    if (r.type == gpujob::model::RopeType::kLlama3) {
      const double wavelen = 2 * M_PI / f;
      const double low = r.original_max_position / r.low_freq_factor;
      const double high = r.original_max_position / r.high_freq_factor;
      if (wavelen > low) {
        f /= r.factor;
      } else if (wavelen >= high) {
        const double s = (r.original_max_position / wavelen - r.low_freq_factor) /
                         (r.high_freq_factor - r.low_freq_factor);
        f = (1 - s) * f / r.factor + s * f;
      }
    }
    out.push_back(f);
  }
  return out;
}

struct Reference {
  std::vector<at::Tensor> hidden;  // num_layers + 1 tensors [T, H], HF's hidden_states
  at::Tensor logits;               // [T, V]
};

inline Reference reference_forward(const gpujob::model::ModelConfig& c, const Weights& w32,
                                   const std::vector<int64_t>& ids) {
  auto W = [&](const std::string& n) { return w32.at(n).to(at::kDouble); };
  const int64_t T = static_cast<int64_t>(ids.size()), H = c.hidden_size, D = c.head_dim;
  const int64_t nh = c.n_heads, nkv = c.n_kv_heads;
  auto rms = [&](const at::Tensor& x, const at::Tensor& g) {
    at::Tensor n = x / at::sqrt(x.pow(2).mean(-1, true) + c.rms_norm_eps);
    return n * (g + c.norm_offset);
  };
  auto act = [&](const at::Tensor& x) {
    return c.activation == gpujob::model::Activation::kSilu ? x * at::sigmoid(x)
        : 0.5 * x * (1 + at::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x.pow(3))));
  };
  Reference ref;
  at::Tensor h = W("model.embed_tokens.weight").index_select(0, at::tensor(ids, at::kLong));
  if (c.embed_scale) h = h * std::sqrt(static_cast<double>(H));
  ref.hidden.push_back(h);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const auto& spec = c.layers[l];
    at::Tensor x = rms(h, W(p + "input_layernorm.weight"));
    auto proj = [&](const std::string& n) {
      at::Tensor y = at::matmul(x, W(p + "self_attn." + n + "_proj.weight").t());
      if (c.qkv_bias) y = y + W(p + "self_attn." + n + "_proj.bias");
      return y;
    };
    at::Tensor q = proj("q").view({T, nh, D}).clone(), k = proj("k").view({T, nkv, D}).clone();
    at::Tensor v = proj("v").view({T, nkv, D});
    if (c.qk_norm) {
      q = rms(q, W(p + "self_attn.q_norm.weight"));
      k = rms(k, W(p + "self_attn.k_norm.weight"));
    }
    const auto inv = reference_inv_freq(spec.rope, D);
    auto rotate = [&](at::Tensor t) {
      at::Tensor out = t.clone();
      auto a = t.accessor<double, 3>();
      auto o = out.accessor<double, 3>();
      for (int64_t s = 0; s < T; ++s)
        for (int64_t hh = 0; hh < t.size(1); ++hh)
          for (int64_t i = 0; i < D / 2; ++i) {
            const double cs = std::cos(s * inv[i]), sn = std::sin(s * inv[i]);
            o[s][hh][i] = a[s][hh][i] * cs - a[s][hh][i + D / 2] * sn;
            o[s][hh][i + D / 2] = a[s][hh][i + D / 2] * cs + a[s][hh][i] * sn;
          }
      return out;
    };
    q = rotate(q.contiguous());
    k = rotate(k.contiguous());
    at::Tensor attn = at::zeros({T, nh, D}, at::kDouble);
    for (int64_t hh = 0; hh < nh; ++hh) {
      const int64_t kv = hh / (nh / nkv);
      for (int64_t s = 0; s < T; ++s) {
        std::vector<double> score;
        std::vector<int64_t> keys;
        for (int64_t j = 0; j <= s; ++j) {
          if (spec.sliding && j <= s - spec.window) continue;
          double d = (q[s][hh] * k[j][kv]).sum().item<double>() * c.attention_scale;
          if (c.attn_logit_softcapping > 0)
            d = std::tanh(d / c.attn_logit_softcapping) * c.attn_logit_softcapping;
          score.push_back(d);
          keys.push_back(j);
        }
        const double mx = *std::max_element(score.begin(), score.end());
        double z = 0;
        for (double& e : score) z += (e = std::exp(e - mx));
        for (size_t m = 0; m < keys.size(); ++m) attn[s][hh] += score[m] / z * v[keys[m]][kv];
      }
    }
    at::Tensor a = at::matmul(attn.view({T, nh * D}), W(p + "self_attn.o_proj.weight").t());
    if (c.sandwich_norms) a = rms(a, W(p + "post_attention_layernorm.weight"));
    h = h + a;
    x = rms(h, W(p + (c.sandwich_norms ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight")));
    at::Tensor m = at::matmul(act(at::matmul(x, W(p + "mlp.gate_proj.weight").t())) *
                                  at::matmul(x, W(p + "mlp.up_proj.weight").t()),
                              W(p + "mlp.down_proj.weight").t());
    if (c.sandwich_norms) m = rms(m, W(p + "post_feedforward_layernorm.weight"));
    h = h + m;
    ref.hidden.push_back(h);
  }
  ref.hidden.back() = rms(h, W("model.norm.weight"));
  at::Tensor head = c.tie_word_embeddings ? W("model.embed_tokens.weight") : W("lm_head.weight");
  ref.logits = at::matmul(ref.hidden.back(), head.t());
  if (c.final_logit_softcapping > 0)
    ref.logits = at::tanh(ref.logits / c.final_logit_softcapping) * c.final_logit_softcapping;
  return ref;
}

// max |a - b| / max(|b|), a scale-aware relative error.
inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kDouble), y = b.to(at::kDouble);
  return (x - y).abs().max().item<double>() / std::max(y.abs().max().item<double>(), 1e-30);
}

// A tiny random decoder of one family (config_for's kinds), written to a temporary checkpoint.
inline std::unique_ptr<gpujob::model::Decoder> load_decoder(const std::string& kind, uint64_t seed,
                                                            const gpujob::model::LoadOptions& options = {}) {
  const auto json = config_for(kind);
  const gpujob::model::ModelConfig config = gpujob::model::parse_model_config(json, "config.json");
  return gpujob::model::Decoder::load(write_checkpoint(json, random_weights(config, seed)), options);
}

// n deterministic token ids below vocab, different for every seed.
inline std::vector<int64_t> token_sequence(int64_t seed, int64_t n, int64_t vocab) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) out.push_back((seed * 31 + i * 17 + i * i) % vocab);
  return out;
}

}  // namespace tiny
