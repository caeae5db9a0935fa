// Generation cache: completions on disk under a key of model, template, data selection and
// generation settings, appended durably per chunk so a rerun generates only what is missing.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace gpujob::io {

// Everything that changes a completion. Plain JSON/strings so every layer can fill it.
struct GenerationCacheKey {
  std::string model_name;       // folder name in the cache ('/' becomes "--")
  nlohmann::json model;         // model_fingerprint(model_dir)
  std::string template_name;    // folder name in the cache
  std::string template_text;    // the template file's full text
  nlohmann::json data;          // describe_selection(...)
  nlohmann::json generation;    // every generation setting: max_new_tokens, temperature, top_p,
                                // seed, dtype, chat template options, ...
  nlohmann::json to_json() const;
  // 16 hex digits: fnv1a64 of to_json().dump() (keys sorted, so stable).
  std::string hash() const;
};

// The model's identity without reading its weights: config.json, generation_config.json and the
// tokenizer files by content hash, the weight files (*.safetensors, *.bin, the index) by name and
// size. One-line error when `model_dir` has no config.json.
nlohmann::json model_fingerprint(const std::string& model_dir);

// One line of completions.jsonl.
struct CachedSample {
  std::string id;                     // the data row's id
  std::string prompt;                 // the prompt as the model saw it (after the chat template)
  std::string completion;             // generated text
  std::vector<int64_t> prompt_ids;    // prompt token ids
  std::vector<int64_t> completion_ids;// generated token ids (no padding)
  std::string finish_reason;          // "stop" (EOS/stop string) or "length"
  std::string predicted;              // parsed letter, "" when none
  std::string correct_answer;         // the row's letter, "" for free rows
  int label = -1;                     // answer_label(): 1 correct, 0 wrong, -1 no answer
  std::string subject;                // "" when none

  nlohmann::json to_json() const;
  // `where` ("file:line") names the line in errors.
  static CachedSample from_json(const nlohmann::json& j, const std::string& where);
};

// A cache entry: <cache_dir>/<model_name>/<template_name>/<key hash>/{key.json, completions.jsonl}.
// Opening creates the folder and key.json, or checks that the stored key equals `key` (a
// different key there is an error naming the first differing field, never a silent mix).
// One process appends (the coordinator); readers may be many.
class GenerationCache {
 public:
  GenerationCache(const std::string& cache_dir, const GenerationCacheKey& key);

  // Every stored sample, in file order; a sample id stored twice keeps its last line. A torn
  // last line from a crash is skipped with a warning.
  std::vector<CachedSample> load() const;
  // Appends the samples of one finished chunk with one write and one fsync.
  void append(const std::vector<CachedSample>& samples);

  const std::string& directory() const { return directory_; }
  std::string completions_path() const { return directory_ + "/completions.jsonl"; }
  std::string key_path() const { return directory_ + "/key.json"; }

 private:
  std::string directory_;
};

// Ids of `wanted` that `stored` does not contain, in the order of `wanted`: what a rerun generates.
std::vector<std::string> missing_ids(const std::vector<std::string>& wanted, const std::vector<CachedSample>& stored);

}  // namespace gpujob::io
