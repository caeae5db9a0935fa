#include "jobs/demo_model.hpp"

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gpujob/model/safetensors.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::jobs {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

// Model shape: small enough that the 4-rank CPU demo runs in seconds.
constexpr int64_t kHidden = 64;
constexpr int64_t kIntermediate = 128;
constexpr int64_t kLayers = 4;
constexpr int64_t kHeads = 4;
constexpr int64_t kKvHeads = 2;
constexpr int64_t kHeadDim = 16;

const char* const kSpecialTokens[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

// Text the merges are learned from when no corpus is given: the vocabulary of the demo prompts.
const char* const kBuiltinCorpus =
    "The following is a multiple choice question. Answer the question and give the letter of "
    "your final answer in the form \\box{X}. Think step by step about which of the choices is "
    "correct. Question: What is the capital of France? A. Paris B. London C. Berlin D. Madrid "
    "Which planet is known as the red planet? Mars Venus Jupiter Saturn. The answer is \\box{A}. "
    "Argue convincingly for the correct answer. Argue convincingly for a subtly wrong answer. "
    "system user assistant biology chemistry history geography mathematics physics computer "
    "science economics philosophy the of and to in is that for it as with was on be by this "
    "are an at from or which one all would there their what so if about who get when make can "
    "like time just know take people into year your good some could them see other than then "
    "now look only come its over think also back after use two how our work first well way even "
    "new want because any these give day most us number 0 1 2 3 4 5 6 7 8 9 10 100 1000";

// GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest to U+0100 onward.
std::vector<std::string> byte_level_alphabet() {
  std::vector<int> printable;
  for (int b = '!'; b <= '~'; ++b) printable.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) printable.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) printable.push_back(b);
  std::vector<int> codepoint(256, -1);
  for (int b : printable) codepoint[b] = b;
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    if (codepoint[b] < 0) codepoint[b] = next++;
  }
  std::vector<std::string> out(256);
  for (int b = 0; b < 256; ++b) {
    const int c = codepoint[b];
    std::string s;
    if (c < 0x80) {
      s.push_back(static_cast<char>(c));
    } else {
      s.push_back(static_cast<char>(0xC0 | (c >> 6)));
      s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
    out[b] = s;
  }
  return out;
}

// Words as sequences of byte-level symbols; a space starts a word (as the pre-tokenizer does).
std::map<std::vector<std::string>, int64_t> count_words(const std::string& text,
                                                       const std::vector<std::string>& alphabet) {
  std::map<std::vector<std::string>, int64_t> words;
  std::vector<std::string> current;
  for (unsigned char c : text) {
    if (c == ' ' || c == '\n' || c == '\t') {
      if (!current.empty()) ++words[current];
      current.clear();
    }
    current.push_back(alphabet[c]);
  }
  if (!current.empty()) ++words[current];
  return words;
}

// Classic BPE training: repeatedly merge the most frequent adjacent pair (ties: smallest pair).
std::vector<std::pair<std::string, std::string>> learn_merges(
    std::map<std::vector<std::string>, int64_t> words, int64_t count) {
  std::vector<std::pair<std::string, std::string>> merges;
  for (int64_t m = 0; m < count; ++m) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [word, n] : words) {
      for (size_t i = 0; i + 1 < word.size(); ++i) pairs[{word[i], word[i + 1]}] += n;
    }
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it) {
      if (it->second > best->second) best = it;
    }
    if (best->second < 2) break;
    const auto pair = best->first;
    merges.push_back(pair);
    std::map<std::vector<std::string>, int64_t> merged;
    for (const auto& [word, n] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < word.size(); ++i) {
        if (i + 1 < word.size() && word[i] == pair.first && word[i + 1] == pair.second) {
          out.push_back(pair.first + pair.second);
          ++i;
        } else {
          out.push_back(word[i]);
        }
      }
      merged[out] += n;
    }
    words = std::move(merged);
  }
  return merges;
}

void write_json(const fs::path& path, const ordered_json& document) {
  std::ofstream out(path);
  GPUJOB_CHECK(out.good(), path.string(), ": cannot open for writing");
  out << document.dump(2) << "\n";
  GPUJOB_CHECK(out.good(), path.string(), ": write failed");
}

int64_t write_tokenizer(const fs::path& dir, const DemoModelOptions& options) {
  const auto alphabet = byte_level_alphabet();
  std::string corpus = kBuiltinCorpus;
  if (!options.corpus_path.empty()) {
    std::ifstream in(options.corpus_path);
    GPUJOB_CHECK(in.good(), options.corpus_path, ": cannot read the demo tokenizer corpus");
    std::stringstream buffer;
    buffer << in.rdbuf();
    corpus += "\n" + buffer.str();
  }
  const auto merges = learn_merges(count_words(corpus, alphabet), options.merges);

  ordered_json vocab = ordered_json::object();
  int64_t next_id = 0;
  for (const auto& symbol : alphabet) vocab[symbol] = next_id++;
  ordered_json merge_list = ordered_json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = next_id++;
    merge_list.push_back(a + " " + b);
  }
  ordered_json added = ordered_json::array();
  for (const char* token : kSpecialTokens) {
    added.push_back({{"id", next_id++}, {"content", token}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  const ordered_json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false},
                                   {"trim_offsets", false}, {"use_regex", false}};
  // Qwen 2's pre-tokenizer regex (letters, digits one at a time, punctuation, whitespace runs).
  const std::string split_regex =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  ordered_json tokenizer = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", split_regex}}}, {"behavior", "Isolated"},
           {"invert", false}},
          byte_level}}}},
      {"post_processor", byte_level},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
        {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"fuse_unk", false},
        {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab},
        {"merges", merge_list}}}};
  write_json(dir / "tokenizer.json", tokenizer);

  ordered_json decoder_map = ordered_json::object();
  for (const auto& token : added) {
    decoder_map[std::to_string(token["id"].get<int64_t>())] = token;
  }
  const std::string chatml =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
      "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' "
      "}}{% endif %}";
  write_json(dir / "tokenizer_config.json",
             {{"add_bos_token", false}, {"add_prefix_space", false},
              {"added_tokens_decoder", decoder_map}, {"bos_token", nullptr},
              {"chat_template", chatml}, {"clean_up_tokenization_spaces", false},
              {"eos_token", "<|im_end|>"}, {"pad_token", "<|endoftext|>"},
              {"model_max_length", 4096}, {"tokenizer_class", "Qwen2Tokenizer"}});
  return next_id;
}

}  // namespace

void write_demo_model(const DemoModelOptions& options) {
  GPUJOB_CHECK(!options.directory.empty(), "make-demo-model: no output directory given");
  const fs::path dir(options.directory);
  std::error_code ec;
  fs::create_directories(dir, ec);
  GPUJOB_CHECK(!ec, dir.string(), ": cannot create directory (", ec.message(), ")");

  const int64_t vocab = write_tokenizer(dir, options);
  const int64_t im_end = vocab - 1;
  const int64_t endoftext = vocab - 3;
  write_json(dir / "config.json",
             {{"architectures", {"Qwen3ForCausalLM"}}, {"model_type", "qwen3"},
              {"vocab_size", vocab}, {"hidden_size", kHidden}, {"intermediate_size", kIntermediate},
              {"num_hidden_layers", kLayers}, {"num_attention_heads", kHeads},
              {"num_key_value_heads", kKvHeads}, {"head_dim", kHeadDim},
              {"max_position_embeddings", 4096}, {"rms_norm_eps", 1e-6},
              {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 1000000.0}}},
              {"tie_word_embeddings", true}, {"attention_bias", false},
              {"hidden_act", "silu"}, {"bos_token_id", endoftext}, {"eos_token_id", im_end},
              {"torch_dtype", "float32"}, {"use_sliding_window", false}});
  write_json(dir / "generation_config.json",
             {{"bos_token_id", endoftext}, {"eos_token_id", {im_end, endoftext}}});

  // Weights: normal with a small spread, norms near one, all from one seeded generator.
  auto generator = at::detail::createCPUGenerator(options.seed);
  auto normal = [&](std::vector<int64_t> shape, double std) {
    return at::normal(0.0, std, shape, generator, at::TensorOptions().dtype(at::kFloat));
  };
  auto norm = [&](int64_t n) { return at::ones({n}) + normal({n}, 0.05); };
  std::map<std::string, at::Tensor> tensors;
  tensors["model.embed_tokens.weight"] = normal({vocab, kHidden}, 0.5);
  tensors["model.norm.weight"] = norm(kHidden);
  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    tensors[p + "input_layernorm.weight"] = norm(kHidden);
    tensors[p + "post_attention_layernorm.weight"] = norm(kHidden);
    tensors[p + "self_attn.q_proj.weight"] = normal({kHeads * kHeadDim, kHidden}, 0.15);
    tensors[p + "self_attn.k_proj.weight"] = normal({kKvHeads * kHeadDim, kHidden}, 0.15);
    tensors[p + "self_attn.v_proj.weight"] = normal({kKvHeads * kHeadDim, kHidden}, 0.15);
    tensors[p + "self_attn.o_proj.weight"] = normal({kHidden, kHeads * kHeadDim}, 0.15);
    tensors[p + "self_attn.q_norm.weight"] = norm(kHeadDim);
    tensors[p + "self_attn.k_norm.weight"] = norm(kHeadDim);
    tensors[p + "mlp.gate_proj.weight"] = normal({kIntermediate, kHidden}, 0.15);
    tensors[p + "mlp.up_proj.weight"] = normal({kIntermediate, kHidden}, 0.15);
    tensors[p + "mlp.down_proj.weight"] = normal({kHidden, kIntermediate}, 0.15);
  }
  model::write_safetensors((dir / "model.safetensors").string(), tensors);
}

void add_make_demo_model_command(CLI::App& app) {
  auto options = std::make_shared<DemoModelOptions>();
  auto* command = app.add_subcommand(
      "make-demo-model", "write the tiny random demo checkpoint (with tokenizer) into DIR");
  command->add_option("directory", options->directory, "output directory")->required();
  command->add_option("--seed", options->seed, "weight seed");
  command->add_option("--corpus", options->corpus_path, "extra text the tokenizer's merges learn from");
  command->callback([options] { write_demo_model(*options); });
}

}  // namespace gpujob::jobs
