// The activation pipeline's facts and per-chunk steps, shared by the extract, cache_activations and
// sweep jobs: which samples, how they are chunked, the generation cache, the HDF5 file's layout,
// and the work a generator, an extractor and the coordinator each do for one chunk.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gpujob/config/run_config.hpp"
#include "gpujob/io/activation_file.hpp"
#include "gpujob/io/generation_cache.hpp"
#include "gpujob/model/generator.hpp"
#include "jobs/samples.hpp"

namespace gpujob::jobs {

struct ChunkRange {
  int64_t first = 0;  // first sample index
  int64_t count = 0;  // samples
};

// Everything every rank computes identically from the config (no communication needed).
class ActivationPipeline {
 public:
  // with_generation: completions are generated (or read from the cache) and extraction runs over
  // prompt + completion; without, extraction runs over the prompts (job: extract).
  ActivationPipeline(const config::RunConfig& config, bool with_generation);

  const config::RunConfig& config() const { return config_; }
  bool with_generation() const { return with_generation_; }
  const PreparedData& data() const { return data_; }
  const text::Tokenizer* tokenizer() const { return tokenizer_.get(); }
  int64_t num_samples() const { return static_cast<int64_t>(data_.samples.size()); }
  int64_t num_chunks() const;
  ChunkRange chunk(int64_t index) const;

  // --- generation cache (coordinator) ---
  io::GenerationCacheKey cache_key() const;
  std::string cache_dir() const;
  // Chunks with at least one sample missing from `stored`.
  std::vector<int64_t> chunks_to_generate(const std::map<std::string, io::CachedSample>& stored) const;
  // The generation payload of a chunk whose samples are all in `stored`.
  std::string payload_from_cache(int64_t chunk, const std::map<std::string, io::CachedSample>& stored) const;
  // Turns a generator's payload into cache lines (answer parsed, label set).
  std::vector<io::CachedSample> cache_records(int64_t chunk, const std::string& payload) const;

  // --- generator ---
  // Completions of one chunk as a payload: a JSON array, one object per sample in order,
  // {"completion_ids", "completion", "finish_reason"}.
  std::string generate_chunk(model::SlotModel& model, const model::GeneratorOptions& options,
                             int64_t chunk) const;

  // --- extractor ---
  io::ActivationFileSpec file_spec() const;
  std::string output_path() const;
  // Token sequences of a chunk: prompt (+ completion from the payload when generating).
  std::vector<std::vector<int64_t>> sequences(int64_t chunk, const std::string& payload) const;
  std::vector<int64_t> special_token_ids() const;

  // --- coordinator, after the file is complete ---
  // /samples/{prompt, completion, subject, predicted, correct_answer, label}.
  void write_sample_strings(const std::map<std::string, io::CachedSample>& stored) const;

 private:
  const config::RunConfig& config_;
  bool with_generation_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  PreparedData data_;
  // Read once: hashing the model's config and tokenizer files is not free, and both the cache key
  // and the file's fingerprint need it.
  nlohmann::json model_fingerprint_;
  int64_t hidden_size_ = 0;
  std::string architecture_;
};

// Loads a cache's lines keyed by sample id.
std::map<std::string, io::CachedSample> load_cache_by_id(const io::GenerationCache& cache);

}  // namespace gpujob::jobs
