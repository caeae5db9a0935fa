// ModelConfig: the facts of a Hugging Face decoder checkpoint (config.json), with its architecture switches.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace gpujob::model {

enum class ModelFamily { kLlama, kQwen2, kQwen3, kGemma3 };
enum class Activation { kSilu, kGeluTanh };
enum class RopeType { kDefault, kLinear, kLlama3 };
// Where the text decoder's weights live in the checkpoint.
enum class WeightLayout {
  kCausalLM,            // model.layers.N..., lm_head.weight
  kMultimodalPublished, // language_model.model.layers.N..., language_model.lm_head.weight
  kMultimodalV5,        // model.language_model.layers.N..., lm_head.weight (transformers 5)
};

// Rotary position embedding of one layer.
struct RopeSpec {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;            // base of the inverse frequencies
  double factor = 1.0;               // linear / llama3 scaling factor
  double low_freq_factor = 1.0;      // llama3 only
  double high_freq_factor = 4.0;     // llama3 only
  int64_t original_max_position = 8192;  // llama3 only: pre-scaling context, tokens
};

// Per-layer attention settings.
struct LayerSpec {
  bool sliding = false;       // sliding-window (local) attention
  int64_t window = 0;         // tokens a query sees, itself included (when sliding)
  RopeSpec rope;
};

// Everything the decoder needs, derived from config.json in one place (parse_model_config).
struct ModelConfig {
  std::string architecture;   // e.g. "Qwen3ForCausalLM"
  std::string source;         // file it came from, for messages
  ModelFamily family = ModelFamily::kLlama;
  WeightLayout layout = WeightLayout::kCausalLM;  // default layout; the loader may pick kMultimodalV5

  int64_t vocab_size = 0;         // tokens
  int64_t hidden_size = 0;        // model width
  int64_t intermediate_size = 0;  // MLP width
  int64_t num_layers = 0;         // decoder blocks
  int64_t n_heads = 0;            // query heads
  int64_t n_kv_heads = 0;         // key/value heads, divides n_heads
  int64_t head_dim = 0;           // features per head
  int64_t max_position_embeddings = 0;  // tokens
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;     // LM head shares the embedding matrix

  // Architecture switches.
  bool qkv_bias = false;          // q/k/v projections carry a bias (Qwen2)
  bool qk_norm = false;           // RMSNorm over each head of q and k (Qwen3, Gemma 3)
  double norm_offset = 0.0;       // RMSNorm scales by (offset + weight): 1 for Gemma
  bool embed_scale = false;       // embeddings multiplied by sqrt(hidden_size) (Gemma)
  bool sandwich_norms = false;    // post-attention and pre/post-feedforward norms (Gemma 3)
  Activation activation = Activation::kSilu;
  double attention_scale = 0.0;   // multiplies q.k: 1/sqrt(query_pre_attn_scalar or head_dim)
  double attn_logit_softcapping = 0.0;   // 0: none
  double final_logit_softcapping = 0.0;  // 0: none

  std::vector<LayerSpec> layers;  // num_layers entries

  std::vector<int64_t> eos_token_ids;  // from config.json (may be empty)
  int64_t bos_token_id = -1;           // -1: none given
};

// Parses a config.json document; `source` names the file in error messages. Unknown
// architectures and unsupported settings are one-line errors naming the key and the file.
ModelConfig parse_model_config(const nlohmann::json& document, const std::string& source);

// Reads and parses `path` (a config.json).
ModelConfig load_model_config(const std::string& path);

const char* family_name(ModelFamily family);

}  // namespace gpujob::model
