// RunConfig: the typed form of one run's YAML file (job, models, data, settings, layout).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gpujob/config/config_source.hpp"

namespace gpujob::config {

enum class JobKind { extract, generate, cache_activations, sweep, spec_thinking, selftest };
enum class DType { float32, bfloat16, float16 };
enum class DevicePreference { automatic, cpu, cuda };  // automatic: cuda when a GPU is visible
enum class ChatTemplate { automatic, gemma, chatml, llama3, none };  // automatic: from tokenizer_config.json
enum class TokenPosition { last, first, middle, mean, all };
// Roles a rank can hold; the order is the order ranks are assigned on a node.
enum class Role { generator, extractor, target_shard, draft };
inline constexpr std::array<Role, 4> kAllRoles = {Role::generator, Role::extractor, Role::target_shard,
                                                  Role::draft};
// How a rank learns its node: automatic prefers Slurm's variables under srun, else MPI.
enum class NodeDetection { automatic, mpi, slurm };

const char* name(JobKind v);
const char* name(DType v);
const char* name(DevicePreference v);
const char* name(ChatTemplate v);
const char* name(TokenPosition v);
const char* name(Role v);
const char* name(NodeDetection v);

// One model (the target, or the draft of spec_thinking): a local Hugging Face directory.
struct ModelSettings {
  std::string path;                                       // directory with config.json and *.safetensors
  DType dtype = DType::bfloat16;                          // weights and activations on the device
  DevicePreference device = DevicePreference::automatic;  // where the model runs
  ChatTemplate chat_template = ChatTemplate::automatic;   // prompt rendering for chat rows
  bool enable_thinking = false;                           // Qwen 3 chat template switch
  bool fused_kernels = true;                              // stacked GEMMs; fused RMSNorm/RoPE/activation CUDA kernels
};

struct DataSettings {
  std::string path;                   // JSONL prompt set (multiple-choice or free rows)
  int64_t n = 0;                      // rows to use after filtering; 0 = all
  bool shuffle = false;               // shuffle before taking n
  int64_t seed = 42;                  // shuffle seed
  std::vector<std::string> subjects;  // keep only these subjects; empty = all
  std::string template_path;          // YAML key `template`: prompt template file; empty = raw rows
};

struct GenerationSettings {
  int max_new_tokens = 256;        // tokens per completion, at most
  double temperature = 0.0;        // 0 = greedy
  int top_k = 0;                   // 0 = off
  double top_p = 1.0;              // nucleus mass in (0, 1]; 1 = off
  double min_p = 0.0;              // relative probability floor in [0, 1); 0 = off
  int64_t seed = 42;               // run seed; a prompt's stream depends on it and the prompt id only
  std::vector<std::string> stop;   // stop strings (the completion ends before them)
  bool ignore_eos = false;         // keep going past EOS (benchmarks)
  int batch_size = 16;             // sequences decoded together per generator rank
  int max_model_len = 4096;        // prompt + completion tokens, at most (sizes the KV cache)
  int max_prefill_tokens = 8192;   // prompt tokens (padded) one prefill call takes; bounds its memory
  bool cuda_graphs = true;         // replay decode steps from CUDA graphs (CUDA)
  std::string output;              // job generate: JSONL file written in data order
  std::string cache_dir;           // completion cache; empty = <output_dir>/cache
};

struct ExtractSettings {
  std::vector<int> layers;                                      // decoder blocks (HF hidden_states[L + 1])
  std::vector<TokenPosition> positions = {TokenPosition::last};  // rows captured per sample
  std::string output;                                           // HDF5 file; empty = <run_dir>/activations.h5
  DType dtype = DType::float32;                                 // stored dtype: float32 or float16
  int batch_size = 8;                                           // sequences per forward pass per extractor
};

struct SweepSettings {
  std::vector<int> layers;                   // empty = extract.layers
  std::vector<TokenPosition> positions;      // empty = extract.positions
  int folds = 5;                             // k of k-fold cross-validation, >= 2
  double l2 = 1.0;                           // L2 penalty of the logistic-regression probe
  int64_t seed = 42;                         // fold assignment seed
  std::string label = "correct";             // probe target: correct (parsed answer == correct
                                             // answer) or data (the rows' own 0/1 `label` field)
};

// Speculative Thinking, with the original implementation's parameter names.
struct SpecSettings {
  std::vector<std::string> trigger_tokens = {"\n\n"};  // small-model text that hands control over
  int max_target_tokens = 20;                          // tokens per draft / per large-model rewrite
  int recap_after_negative_num = 15;                   // negative drafts before a recap (grows)
  int original_recap_token_num = 125;                  // large-model recap length at start (grows)
  int add_each_recap = 25;                             // recap length increment
  int max_recap_token_num = 200;                       // recap length cap
  int add_each_neg = 5;                                // threshold increment after a recap
  int max_negative_num = 30;                           // threshold cap
  std::vector<std::string> positive_words = {"yeah", "yes", "final answer", "confident"};
  std::vector<std::string> negative_words = {"wait",        "alternatively", "hold on", "another",
                                             "verify",      "think again",   "recap",   "check"};
  std::vector<std::string> verify_words = {"verify", "think again", "recap", "check"};  // kept text with one: the large model writes more
  bool choose_large = true;            // a non-neutral draft is replaced by the large model's text
  bool begin = false;                  // the large model writes the opening tokens
  int begin_token_num = 100;           // length of that opening
  std::string help_recap_words = "Let me check whether there are some wrong steps:";
  std::vector<std::string> modes = {"large", "spec"};  // any of large, small, spec
  int num_problems = 5;                // problems from the file, in order; 0 = all
  int num_runs = 5;                    // runs per problem and mode (after one warm-up)
  int max_tokens = 32768;              // generated tokens per run (the prompt is not counted)
  std::string problems;                // JSONL with `problem` and `answer`
  std::string warmup_prompt = "What is 2+2?";
  double temperature = 0.6;            // sampling of the original benchmark
  double top_p = 0.95;
  int top_k = 20;
  int64_t seed = 42;
  std::string output_dir = "benchmark_results";  // *_benchmark_<YYYYmmdd_HHMMSS>.json
};

// One role of the layout: which node-local GPUs it uses and how ranks sit on them.
struct RoleSettings {
  bool enabled = false;          // the role appears in the YAML
  std::vector<int> gpus;         // node-local GPU ids (slots when the model runs on the CPU)
  int ranks_per_gpu = 1;         // ranks of this role per listed GPU
  double memory_fraction = 0.0;  // of the GPU's memory, per rank; 0 = 0.9 / ranks_per_gpu
  int tensor_parallel = 0;       // target_shard/draft: ranks per model replica; 0 = all of the role's ranks

  int ranks() const { return static_cast<int>(gpus.size()) * ranks_per_gpu; }
  double effective_memory_fraction() const {
    return memory_fraction > 0 ? memory_fraction : 0.9 / ranks_per_gpu;
  }
};

struct LayoutSettings {
  std::map<Role, RoleSettings> roles;  // one entry per Role (enabled or not)
  int gpus_per_node = 0;               // GPUs each node has; 0 = ask the device at startup
  NodeDetection node_detection = NodeDetection::automatic;

  const RoleSettings& role(Role r) const { return roles.at(r); }
  bool any_role() const;  // false: no roles given, every rank runs every phase of the job
};

struct CoordinatorSettings {
  int chunk_size = 16;               // prompts per chunk handed to a worker
  double progress_interval_s = 5.0;  // seconds between progress lines on rank 0, at least
};

// job: selftest, the coordinator path without models (used by the tests).
struct SelftestSettings {
  int num_chunks = 20;                   // chunks in the first stage
  int items_per_chunk = 4;               // numbers per chunk (the work is their sum of squares)
  int delay_ms = 0;                      // per chunk and stage, on every rank
  std::vector<int> delay_ms_by_rank;     // per-rank override of delay_ms, indexed by world rank
  bool two_stages = false;               // a second stage consumes the first one's results
  int fail_rank = -1;                    // rank that fails; -1 = none
  int fail_chunk = -1;                   // it fails on its first chunk with an id >= this
  std::string fail_mode = "exception";   // exception (thrown) or exit (the process dies)
};

struct RunConfig {
  JobKind job = JobKind::selftest;
  std::string run_name;                // default: the config file's stem
  std::string output_dir = "results";  // results go to <output_dir>/<run_name>/
  ModelSettings model;
  ModelSettings draft_model;  // spec_thinking only
  DataSettings data;
  GenerationSettings generation;
  ExtractSettings extract;
  SweepSettings sweep;
  SpecSettings spec;
  LayoutSettings layout;
  CoordinatorSettings coordinator;
  SelftestSettings selftest;

  ConfigSource source;  // where each key came from, for errors found after parsing

  std::string run_dir() const { return output_dir + "/" + run_name; }
};

}  // namespace gpujob::config
