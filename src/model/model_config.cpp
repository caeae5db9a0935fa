// ModelConfig from config.json: both the published form (rope_scaling, rope_theta,
// rope_local_base_freq, sliding_window_pattern) and the transformers 5 form (rope_parameters,
// layer_types), reduced to one architecture spec.
#include "gpujob/model/model_config.hpp"

#include "gpujob/util/error.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

namespace gpujob::model {
namespace {

using nlohmann::json;

// Reads keys of one JSON object and names "file: key.path" in every message.
class Reader {
 public:
  Reader(const json& object, std::string source, std::string prefix)
      : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {}

  bool has(const std::string& key) const {
    return object_.contains(key) && !object_.at(key).is_null();
  }
  std::string where(const std::string& key) const { return source_ + ": key " + prefix_ + key; }

  template <typename T>
  T get(const std::string& key, T fallback) const {
    return has(key) ? convert<T>(key) : fallback;
  }
  template <typename T>
  T require(const std::string& key) const {
    GPUJOB_CHECK(has(key), where(key), " is missing");
    return convert<T>(key);
  }
  Reader child(const std::string& key) const {
    GPUJOB_CHECK(has(key) && object_.at(key).is_object(), where(key), " must be an object");
    return Reader(object_.at(key), source_, prefix_ + key + ".");
  }
  const json& raw(const std::string& key) const { return object_.at(key); }
  const json& object() const { return object_; }

 private:
  template <typename T>
  T convert(const std::string& key) const {
    try {
      return object_.at(key).get<T>();
    } catch (const json::exception&) {
      fail(where(key), " has the wrong type: ", object_.at(key).dump());
    }
  }
  const json& object_;
  std::string source_;
  std::string prefix_;
};

ModelFamily family_of(const std::string& architecture, WeightLayout* layout, bool* nested,
                      const std::string& source) {
  *layout = WeightLayout::kCausalLM;
  *nested = false;
  if (architecture == "LlamaForCausalLM") return ModelFamily::kLlama;
  if (architecture == "Qwen2ForCausalLM") return ModelFamily::kQwen2;
  if (architecture == "Qwen3ForCausalLM") return ModelFamily::kQwen3;
  if (architecture == "Gemma3ForCausalLM") return ModelFamily::kGemma3;
  if (architecture == "Gemma3ForConditionalGeneration") {
    *layout = WeightLayout::kMultimodalPublished;
    *nested = true;
    return ModelFamily::kGemma3;
  }
  fail(source, ": key architectures: \"", architecture,
       "\" is not supported (expected LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
       "Gemma3ForCausalLM or Gemma3ForConditionalGeneration)");
}

// One rope description: {rope_type|type, rope_theta?, factor, ...}. `theta` is the base to use
// when the object does not carry rope_theta (the published form keeps it outside).
RopeSpec parse_rope(const Reader& r, double theta) {
  RopeSpec rope;
  rope.theta = r.get<double>("rope_theta", theta);
  std::string type = r.get<std::string>("rope_type", r.get<std::string>("type", "default"));
  if (type == "default") {
    rope.type = RopeType::kDefault;
  } else if (type == "linear") {
    rope.type = RopeType::kLinear;
    rope.factor = r.require<double>("factor");
  } else if (type == "llama3") {
    rope.type = RopeType::kLlama3;
    rope.factor = r.require<double>("factor");
    rope.low_freq_factor = r.require<double>("low_freq_factor");
    rope.high_freq_factor = r.require<double>("high_freq_factor");
    rope.original_max_position = r.require<int64_t>("original_max_position_embeddings");
  } else {
    fail(r.where("rope_type"), ": \"", type,
         "\" is not supported (expected default, linear or llama3)");
  }
  GPUJOB_CHECK(rope.factor > 0, r.where("factor"), " must be positive, found ", rope.factor);
  return rope;
}

Activation parse_activation(const Reader& r, ModelFamily family) {
  const std::string key =
      family == ModelFamily::kGemma3 && r.has("hidden_activation") ? "hidden_activation" : "hidden_act";
  const std::string fallback = family == ModelFamily::kGemma3 ? "gelu_pytorch_tanh" : "silu";
  const std::string name = r.get<std::string>(key, fallback);
  if (name == "silu" || name == "swish") return Activation::kSilu;
  if (name == "gelu_pytorch_tanh" || name == "gelu_tanh") return Activation::kGeluTanh;
  fail(r.where(key), ": activation \"", name, "\" is not supported (expected silu or gelu_pytorch_tanh)");
}

std::vector<int64_t> parse_ids(const json& value) {
  if (value.is_number_integer()) return {value.get<int64_t>()};
  if (value.is_array()) return value.get<std::vector<int64_t>>();
  return {};
}

}  // namespace

const char* family_name(ModelFamily family) {
  switch (family) {
    case ModelFamily::kLlama: return "llama";
    case ModelFamily::kQwen2: return "qwen2";
    case ModelFamily::kQwen3: return "qwen3";
    case ModelFamily::kGemma3: return "gemma3";
  }
  return "?";
}

ModelConfig parse_model_config(const json& document, const std::string& source) {
  GPUJOB_CHECK(document.is_object(), source, ": config.json must be a JSON object");
  const Reader top(document, source, "");
  ModelConfig c;
  c.source = source;
  const auto architectures = top.require<std::vector<std::string>>("architectures");
  GPUJOB_CHECK(architectures.size() == 1, top.where("architectures"),
               " must name exactly one architecture, found ", architectures.size());
  c.architecture = architectures[0];
  bool nested = false;
  c.family = family_of(c.architecture, &c.layout, &nested, source);
  const bool gemma = c.family == ModelFamily::kGemma3;
  const Reader r = nested ? top.child("text_config") : top;

  // Sizes. Gemma 3's published multimodal config leaves most text settings at the
  // Gemma3TextConfig defaults, so those defaults apply for that family only.
  c.vocab_size = gemma ? r.get<int64_t>("vocab_size", 262208) : r.require<int64_t>("vocab_size");
  c.hidden_size = gemma ? r.get<int64_t>("hidden_size", 2304) : r.require<int64_t>("hidden_size");
  c.intermediate_size = gemma ? r.get<int64_t>("intermediate_size", 9216)
                              : r.require<int64_t>("intermediate_size");
  c.num_layers = gemma ? r.get<int64_t>("num_hidden_layers", 26) : r.require<int64_t>("num_hidden_layers");
  c.n_heads = gemma ? r.get<int64_t>("num_attention_heads", 8) : r.require<int64_t>("num_attention_heads");
  c.n_kv_heads = r.get<int64_t>("num_key_value_heads", gemma ? 4 : c.n_heads);
  const int64_t default_head_dim =
      gemma ? 256 : (c.family == ModelFamily::kQwen3 ? 128 : c.hidden_size / std::max<int64_t>(c.n_heads, 1));
  c.head_dim = r.get<int64_t>("head_dim", default_head_dim);
  c.max_position_embeddings = r.get<int64_t>("max_position_embeddings", gemma ? 131072 : 2048);
  c.rms_norm_eps = r.get<double>("rms_norm_eps", 1e-6);
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "num_key_value_heads", "head_dim"}) {
    if (r.has(key)) GPUJOB_CHECK(r.get<int64_t>(key, 0) > 0, r.where(key), " must be positive");
  }
  GPUJOB_CHECK(c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0, r.where("num_key_value_heads"),
               ": ", c.n_kv_heads, " does not divide num_attention_heads ", c.n_heads);
  const bool tie_default = gemma;
  c.tie_word_embeddings = top.get<bool>("tie_word_embeddings", r.get<bool>("tie_word_embeddings", tie_default));

  // Architecture switches, all in one place.
  c.qkv_bias = c.family == ModelFamily::kQwen2;
  c.qk_norm = c.family == ModelFamily::kQwen3 || gemma;
  c.norm_offset = gemma ? 1.0 : 0.0;
  c.embed_scale = gemma;
  c.sandwich_norms = gemma;
  c.activation = parse_activation(r, c.family);
  c.attention_scale = 1.0 / std::sqrt(gemma ? r.get<double>("query_pre_attn_scalar", 256.0)
                                            : static_cast<double>(c.head_dim));
  c.attn_logit_softcapping = r.get<double>("attn_logit_softcapping", 0.0);
  c.final_logit_softcapping = r.get<double>("final_logit_softcapping", 0.0);
  if (c.family == ModelFamily::kLlama || c.family == ModelFamily::kQwen3) {
    GPUJOB_CHECK(!r.get<bool>("attention_bias", false), r.where("attention_bias"),
                 ": true is not supported for ", c.architecture);
  }
  if (c.family == ModelFamily::kLlama)
    GPUJOB_CHECK(!r.get<bool>("mlp_bias", false), r.where("mlp_bias"), ": true is not supported");
  GPUJOB_CHECK(!r.get<bool>("use_bidirectional_attention", false), r.where("use_bidirectional_attention"),
               ": true is not supported (causal decoders only)");
  if (c.family == ModelFamily::kQwen2 || c.family == ModelFamily::kQwen3)
    GPUJOB_CHECK(!r.get<bool>("use_sliding_window", false), r.where("use_sliding_window"),
                 ": true is not supported for ", c.architecture);

  // Layer types: transformers 5 lists them; the published Gemma 3 form gives a pattern
  // (every pattern-th layer is global); other published configs have global layers only.
  std::vector<bool> sliding(c.num_layers, false);
  if (r.has("layer_types")) {
    const auto types = r.require<std::vector<std::string>>("layer_types");
    GPUJOB_CHECK(static_cast<int64_t>(types.size()) == c.num_layers, r.where("layer_types"),
                 ": ", types.size(), " entries, expected num_hidden_layers = ", c.num_layers);
    for (int64_t i = 0; i < c.num_layers; ++i) {
      GPUJOB_CHECK(types[i] == "full_attention" || types[i] == "sliding_attention",
                   r.where("layer_types"), "[", i, "]: \"", types[i],
                   "\" (expected full_attention or sliding_attention)");
      sliding[i] = types[i] == "sliding_attention";
    }
  } else if (gemma) {
    const int64_t pattern = r.get<int64_t>("sliding_window_pattern", 6);
    GPUJOB_CHECK(pattern > 0, r.where("sliding_window_pattern"), " must be positive");
    for (int64_t i = 0; i < c.num_layers; ++i) sliding[i] = (i + 1) % pattern != 0;
  }
  int64_t window = 0;
  for (bool s : sliding) {
    if (s) {
      window = gemma ? r.get<int64_t>("sliding_window", 4096) : r.require<int64_t>("sliding_window");
      GPUJOB_CHECK(window > 0, r.where("sliding_window"), " must be positive, found ", window);
      break;
    }
  }

  // Rope per layer type.
  RopeSpec global_rope;
  RopeSpec local_rope;
  if (r.has("rope_parameters")) {
    const Reader params = r.child("rope_parameters");
    const bool per_type = params.has("full_attention") || params.has("sliding_attention");
    if (per_type) {
      global_rope = parse_rope(params.child("full_attention"), 10000.0);
      local_rope = params.has("sliding_attention") ? parse_rope(params.child("sliding_attention"), 10000.0)
                                                   : global_rope;
    } else {
      global_rope = parse_rope(params, r.get<double>("rope_theta", gemma ? 1e6 : 10000.0));
      local_rope = global_rope;
    }
  } else {
    const double theta = r.get<double>("rope_theta", gemma ? 1e6 : 10000.0);
    if (r.has("rope_scaling")) {
      global_rope = parse_rope(r.child("rope_scaling"), theta);
    } else {
      global_rope.theta = theta;
    }
    local_rope = global_rope;
    if (gemma) {  // local layers: plain rope with their own base
      local_rope = RopeSpec{};
      local_rope.theta = r.get<double>("rope_local_base_freq", 10000.0);
    }
  }
  c.layers.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    c.layers[i].sliding = sliding[i];
    c.layers[i].window = sliding[i] ? window : 0;
    c.layers[i].rope = sliding[i] ? local_rope : global_rope;
  }

  // Token ids: the multimodal config keeps them at the top level.
  for (const Reader* level : {&top, &r}) {
    if (c.eos_token_ids.empty() && level->has("eos_token_id"))
      c.eos_token_ids = parse_ids(level->raw("eos_token_id"));
    if (c.bos_token_id < 0 && level->has("bos_token_id") && level->raw("bos_token_id").is_number_integer())
      c.bos_token_id = level->raw("bos_token_id").get<int64_t>();
  }
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  std::ifstream in(path);
  GPUJOB_CHECK(in.good(), path, ": cannot open model config");
  json document;
  try {
    in >> document;
  } catch (const json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  return parse_model_config(document, path);
}

}  // namespace gpujob::model
