// job: generate: completions for every selected prompt, written as one JSONL file in data order.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "gpujob/config/run_config.hpp"
#include "gpujob/model/generator.hpp"
#include "gpujob/text/tokenizer.hpp"
#include "jobs/job_registry.hpp"
#include "jobs/samples.hpp"

namespace gpujob::jobs {

// The YAML `generation` section as generator options: sampling settings, the checkpoint's EOS ids
// (config.json and generation_config.json), stop strings, and text through `tokenizer` (decode with
// special tokens skipped). `tokenizer` may be null: then completions carry ids only, and stop strings
// are an error.
model::GeneratorOptions generator_options(const config::GenerationSettings& generation,
                                          const std::string& model_dir, const text::Tokenizer* tokenizer);

// Positions one KV-cache slot needs so that every sample fits: longest prompt + max_new_tokens - 1.
// A sample whose prompt + max_new_tokens exceeds generation.max_model_len is a one-line error
// naming the sample id and both lengths.
int64_t kv_cache_length(const std::vector<Sample>& samples, const config::GenerationSettings& generation);

// Completions of `samples` (all of them, or one chunk) in their order. A sample's random stream is
// keyed by its data id, so a sample gets the same completion in any chunk, on any rank.
std::vector<model::Completion> generate_completions(model::SlotModel& model, const std::vector<Sample>& samples,
                                                    const model::GeneratorOptions& options);

// One line of the output file: {"id", "completion_ids", "completion", "finish_reason"}; the id keeps
// the data file's type (integer or string); "completion" only `with_text`.
nlohmann::json completion_record(const std::string& id, bool id_is_integer, const model::Completion& completion,
                                 bool with_text);

// The JSONL lines (one per sample, each ending in a newline) of samples [begin, end) of `data`.
std::string completion_lines(model::SlotModel& model, const model::GeneratorOptions& options,
                             const PreparedData& data, int64_t begin, int64_t end, bool with_text);

// `job: generate` under MPI: the coordinator hands chunks of coordinator.chunk_size samples to the
// generator ranks (each holds one model and a KV cache of generation.batch_size slots), and rank 0
// writes generation.output from the chunks in data order once all are in. Lines depend only on
// their sample, so the file is the same for any number of ranks, chunk size or batch size.
int run_generate_job(JobContext& context);

// Runs `job: generate` in this process alone: loads the model and tokenizer, prepares the data,
// generates with generation.batch_size slots, and writes generation.output (JSONL, one line per
// sample in data order, replaced atomically).
void run_generate_single_process(const config::RunConfig& config);

}  // namespace gpujob::jobs
