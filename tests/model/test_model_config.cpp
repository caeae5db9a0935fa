// ModelConfig: both config.json forms, Gemma 3 layer types and ropes, nesting, and error messages.
#include "gpujob/model/model_config.hpp"
#include "gpujob/util/error.hpp"

#include <nlohmann/json.hpp>

// Last: libtorch's logging header defines its own CHECK, which Catch's must replace.
#include "catch.hpp"

using namespace gpujob::model;
using nlohmann::json;

namespace {

json base_llama() {
  return json::parse(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 100,
    "rms_norm_eps": 1e-5, "eos_token_id": [128001, 128009], "bos_token_id": 128000})");
}

}  // namespace

TEST_CASE("Llama 3 rope scaling reads the same in the published and the transformers 5 form") {
  json old_form = base_llama();
  old_form["rope_theta"] = 500000.0;
  old_form["rope_scaling"] = json::parse(R"({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})");
  json new_form = base_llama();
  new_form["rope_parameters"] = json::parse(R"({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})");
  for (const json& doc : {old_form, new_form}) {
    const ModelConfig c = parse_model_config(doc, "config.json");
    CHECK(c.family == ModelFamily::kLlama);
    CHECK(c.head_dim == 8);
    CHECK(c.n_kv_heads == 2);
    CHECK(c.attention_scale == Approx(1.0 / std::sqrt(8.0)));
    CHECK_FALSE(c.tie_word_embeddings);
    CHECK(c.eos_token_ids == std::vector<int64_t>{128001, 128009});
    CHECK(c.bos_token_id == 128000);
    REQUIRE(c.layers.size() == 2);
    for (const auto& l : c.layers) {
      CHECK_FALSE(l.sliding);
      CHECK(l.rope.type == RopeType::kLlama3);
      CHECK(l.rope.theta == 500000.0);
      CHECK(l.rope.factor == 8.0);
      CHECK(l.rope.original_max_position == 8192);
    }
  }
}

TEST_CASE("Qwen switches: q/k/v bias for Qwen2, q/k norm and explicit head_dim for Qwen3") {
  json q2 = base_llama();
  q2["architectures"] = {"Qwen2ForCausalLM"};
  const ModelConfig c2 = parse_model_config(q2, "config.json");
  CHECK(c2.qkv_bias);
  CHECK_FALSE(c2.qk_norm);
  json q3 = base_llama();
  q3["architectures"] = {"Qwen3ForCausalLM"};
  q3["head_dim"] = 32;
  q3["tie_word_embeddings"] = true;
  const ModelConfig c3 = parse_model_config(q3, "config.json");
  CHECK_FALSE(c3.qkv_bias);
  CHECK(c3.qk_norm);
  CHECK(c3.head_dim == 32);
  CHECK(c3.tie_word_embeddings);
  CHECK(c3.attention_scale == Approx(1.0 / std::sqrt(32.0)));
}

TEST_CASE("Gemma 3: published and transformers 5 forms give the same layer specs") {
  // The gemma-3-12b-it layout: a nested text_config holding only what differs from the defaults.
  const json published = json::parse(R"({"architectures": ["Gemma3ForConditionalGeneration"],
    "eos_token_id": [1, 106], "text_config": {"hidden_size": 3840, "intermediate_size": 15360,
    "model_type": "gemma3_text", "num_attention_heads": 16, "num_hidden_layers": 48,
    "num_key_value_heads": 8, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
    "sliding_window": 1024}, "vision_config": {"hidden_size": 1152}})");
  std::vector<std::string> types;
  for (int i = 0; i < 48; ++i) types.push_back((i + 1) % 6 ? "sliding_attention" : "full_attention");
  json v5 = json::parse(R"({"architectures": ["Gemma3ForCausalLM"], "hidden_size": 3840,
    "intermediate_size": 15360, "num_attention_heads": 16, "num_hidden_layers": 48, "num_key_value_heads": 8,
    "head_dim": 256, "query_pre_attn_scalar": 256, "sliding_window": 1024, "vocab_size": 262208,
    "rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}})");
  v5["layer_types"] = types;
  const ModelConfig a = parse_model_config(published, "published.json");
  const ModelConfig b = parse_model_config(v5, "v5.json");
  CHECK(a.layout == WeightLayout::kMultimodalPublished);
  CHECK(b.layout == WeightLayout::kCausalLM);
  for (const ModelConfig* c : {&a, &b}) {
    CHECK(c->family == ModelFamily::kGemma3);
    CHECK(c->head_dim == 256);
    CHECK(c->vocab_size == 262208);
    CHECK(c->norm_offset == 1.0);
    CHECK(c->embed_scale);
    CHECK(c->sandwich_norms);
    CHECK(c->qk_norm);
    CHECK(c->tie_word_embeddings);
    CHECK(c->activation == Activation::kGeluTanh);
    CHECK(c->attention_scale == Approx(1.0 / 16.0));
    REQUIRE(c->layers.size() == 48);
  }
  CHECK(a.eos_token_ids == std::vector<int64_t>{1, 106});
  for (int i = 0; i < 48; ++i) {
    INFO("layer " << i);
    const bool global = (i + 1) % 6 == 0;
    for (const ModelConfig* c : {&a, &b}) {
      const LayerSpec& l = c->layers[i];
      CHECK(l.sliding == !global);
      CHECK(l.window == (global ? 0 : 1024));
      CHECK(l.rope.type == (global ? RopeType::kLinear : RopeType::kDefault));
      CHECK(l.rope.theta == (global ? 1e6 : 1e4));
      CHECK(l.rope.factor == (global ? 8.0 : 1.0));
    }
  }
}

TEST_CASE("config errors name the key and the file") {
  json doc = base_llama();
  doc["architectures"] = {"MistralForCausalLM"};
  CHECK_THROWS_WITH(parse_model_config(doc, "m/config.json"),
                    Catch::StartsWith("m/config.json: key architectures: \"MistralForCausalLM\" is not supported"));
  doc = base_llama();
  doc["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  CHECK_THROWS_WITH(parse_model_config(doc, "m/config.json"),
                    "m/config.json: key rope_scaling.rope_type: \"yarn\" is not supported (expected default, linear or llama3)");
  doc = base_llama();
  doc["rope_parameters"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  CHECK_THROWS_WITH(parse_model_config(doc, "m/config.json"),
                    "m/config.json: key rope_parameters.low_freq_factor is missing");
  doc = base_llama();
  doc.erase("hidden_size");
  CHECK_THROWS_WITH(parse_model_config(doc, "m/config.json"), "m/config.json: key hidden_size is missing");
  doc = base_llama();
  doc["num_key_value_heads"] = 3;
  CHECK_THROWS_WITH(parse_model_config(doc, "m/config.json"),
                    "m/config.json: key num_key_value_heads: 3 does not divide num_attention_heads 8");
  doc = base_llama();
  doc["hidden_act"] = "relu";
  CHECK_THROWS_WITH(parse_model_config(doc, "m/config.json"),
                    Catch::StartsWith("m/config.json: key hidden_act: activation \"relu\" is not supported"));
  doc = base_llama();
  doc["layer_types"] = {"full_attention"};
  CHECK_THROWS_WITH(parse_model_config(doc, "m/config.json"),
                    "m/config.json: key layer_types: 1 entries, expected num_hidden_layers = 2");
  doc = base_llama();
  doc["architectures"] = {"Qwen2ForCausalLM"};
  doc["use_sliding_window"] = true;
  CHECK_THROWS_WITH(parse_model_config(doc, "m/config.json"),
                    "m/config.json: key use_sliding_window: true is not supported for Qwen2ForCausalLM");
  doc = json::parse(R"({"architectures": ["Gemma3ForConditionalGeneration"]})");
  CHECK_THROWS_WITH(parse_model_config(doc, "m/config.json"), "m/config.json: key text_config must be an object");
  CHECK_THROWS_WITH(load_model_config("/nonexistent/config.json"),
                    "/nonexistent/config.json: cannot open model config");
}
