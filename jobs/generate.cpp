#include "jobs/generate.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>

#include "gpujob/cluster/coordinator.hpp"
#include "gpujob/cluster/stop_signal.hpp"
#include "gpujob/io/jsonl.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/sampler.hpp"
#include "gpujob/util/error.hpp"
#include "jobs/activation_pipeline.hpp"
#include "jobs/generation_stage.hpp"
#include "jobs/model_setup.hpp"

namespace gpujob::jobs {

model::GeneratorOptions generator_options(const config::GenerationSettings& generation,
                                          const std::string& model_dir, const text::Tokenizer* tokenizer) {
  model::GeneratorOptions options;
  options.sampling.temperature = generation.temperature;
  options.sampling.top_k = generation.top_k;
  options.sampling.top_p = generation.top_p;
  options.sampling.min_p = generation.min_p;
  options.sampling.seed = static_cast<uint64_t>(generation.seed);
  model::validate_sampling(options.sampling);

  options.stop.eos_token_ids = model::read_eos_token_ids(model_dir);
  options.stop.stop_strings = generation.stop;
  options.stop.max_new_tokens = generation.max_new_tokens;
  options.stop.ignore_eos = generation.ignore_eos;
  options.max_prefill_tokens = generation.max_prefill_tokens;
  model::validate_stop_conditions(options.stop);
  if (options.stop.eos_token_ids.empty() && !options.stop.ignore_eos) {
    spdlog::warn("{}: no eos_token_id in config.json or generation_config.json; completions end at "
                 "generation.max_new_tokens or a stop string", model_dir);
  }

  if (tokenizer) {
    options.decode = [tokenizer](const std::vector<int64_t>& ids) {
      std::vector<int32_t> narrow(ids.begin(), ids.end());
      return tokenizer->decode(narrow, /*skip_special_tokens=*/true);
    };
  } else {
    GPUJOB_CHECK(generation.stop.empty(), "generation.stop: stop strings need a tokenizer, and ", model_dir,
                 " has neither tokenizer.json nor tokenizer.model");
  }
  return options;
}

int64_t kv_cache_length(const std::vector<Sample>& samples, const config::GenerationSettings& generation) {
  int64_t longest = 1;
  for (const Sample& s : samples) {
    const int64_t len = static_cast<int64_t>(s.prompt_ids.size());
    GPUJOB_CHECK(len + generation.max_new_tokens <= generation.max_model_len, "sample \"", s.id, "\": prompt of ",
                 len, " tokens + generation.max_new_tokens ", generation.max_new_tokens,
                 " exceeds generation.max_model_len ", generation.max_model_len);
    longest = std::max(longest, len);
  }
  return model::slot_positions_needed(longest, generation.max_new_tokens);
}

std::vector<model::Completion> generate_completions(model::SlotModel& model, const std::vector<Sample>& samples,
                                                    const model::GeneratorOptions& options) {
  std::vector<model::GenerationRequest> requests;
  requests.reserve(samples.size());
  for (const Sample& s : samples) {
    model::GenerationRequest r;
    r.prompt_ids = s.prompt_ids;
    r.stream_key = model::stream_key_for_id(s.id);
    requests.push_back(std::move(r));
  }
  model::Generator generator(model, options);
  return generator.generate(requests);
}

nlohmann::json completion_record(const std::string& id, bool id_is_integer, const model::Completion& completion,
                                 bool with_text) {
  nlohmann::json line = nlohmann::json::object();
  if (id_is_integer) {
    line["id"] = std::stoll(id);
  } else {
    line["id"] = id;
  }
  line["completion_ids"] = completion.ids;
  if (with_text) line["completion"] = completion.text;
  line["finish_reason"] = model::finish_reason_name(completion.finish_reason);
  return line;
}

std::string completion_lines(model::SlotModel& model, const model::GeneratorOptions& options,
                             const PreparedData& data, int64_t begin, int64_t end, bool with_text) {
  std::vector<Sample> samples(data.samples.begin() + begin, data.samples.begin() + end);
  std::vector<model::Completion> completions = generate_completions(model, samples, options);
  std::string out;
  for (size_t i = 0; i < samples.size(); ++i) {
    const Sample& s = samples[i];
    const bool id_is_integer = data.prompt_set.rows.at(static_cast<size_t>(s.row_index)).id_is_integer;
    // decode emits U+FFFD for invalid UTF-8, so `replace` never fires; it only guards the file.
    out += completion_record(s.id, id_is_integer, completions[i], with_text)
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += '\n';
  }
  return out;
}

namespace {

void write_output(const std::string& path, const std::string& text, size_t lines) {
  std::filesystem::path output(path);
  if (output.has_parent_path()) std::filesystem::create_directories(output.parent_path());
  io::write_file_atomically(path, text);
  spdlog::info("generate: wrote {} completions to {}", lines, path);
}

model::ProgressFn progress_logger() {
  auto started = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  auto last = std::make_shared<std::chrono::steady_clock::time_point>(*started);
  return [started, last](const model::GenerationProgress& p) {
    auto now = std::chrono::steady_clock::now();
    if (now - *last < std::chrono::seconds(5) && p.prompts_done < p.prompts_total) return;
    *last = now;
    double seconds = std::chrono::duration<double>(now - *started).count();
    spdlog::debug("generate: {}/{} prompts of this batch, {} tokens, {:.1f} tokens/s", p.prompts_done,
                  p.prompts_total, p.tokens_generated, seconds > 0 ? p.tokens_generated / seconds : 0.0);
  };
}


}  // namespace

void run_generate_single_process(const config::RunConfig& config) {
  const config::GenerationSettings& generation = config.generation;
  GPUJOB_CHECK(!generation.output.empty(), "generation.output: job generate needs an output file (FILE.jsonl)");
  std::unique_ptr<text::Tokenizer> tokenizer = load_model_tokenizer(config.model.path);
  PreparedData data = prepare_samples(config, tokenizer.get());
  model::GeneratorOptions options = generator_options(generation, config.model.path, tokenizer.get());
  options.progress = progress_logger();
  const int64_t max_len = kv_cache_length(data.samples, generation);
  std::unique_ptr<model::Decoder> decoder = load_decoder(config.model, /*gpu=*/0, /*memory_fraction=*/0.9);
  auto slots = make_generator_slots(*decoder, generation, static_cast<int64_t>(data.samples.size()), max_len);
  const int64_t n = static_cast<int64_t>(data.samples.size());
  write_output(generation.output, completion_lines(*slots, options, data, 0, n, tokenizer != nullptr),
               data.samples.size());
}

int run_generate_job(JobContext& context) {
  const config::RunConfig& cfg = context.config;
  const config::GenerationSettings& generation = cfg.generation;
  cluster::World& world = context.world;
  GPUJOB_CHECK(!generation.output.empty(), "generation.output: job generate needs an output file (FILE.jsonl)");

  // Every rank prepares the same samples, so a chunk is named by its number alone. Completions go
  // through the generation cache, as in the activation pipeline: a rerun after a stop or a crash
  // generates only the missing chunks, and a later cache_activations run with the same settings
  // reuses them.
  std::unique_ptr<ActivationPipeline> pipeline;
  world.agree([&] {
    pipeline = std::make_unique<ActivationPipeline>(cfg, /*with_generation=*/true);
    (void)kv_cache_length(pipeline->data().samples, generation);  // every prompt fits, checked up front
  });
  std::unique_ptr<CompletionStore> completions;
  std::vector<cluster::WorkQueue> queues;
  cluster::CoordinatorHooks hooks;
  if (world.rank() == 0) {
    completions = std::make_unique<CompletionStore>(*pipeline);
    queues.push_back(completions->work_queue());
    hooks.on_result = [&](const cluster::ChunkResult& result) { completions->record(result); };
  }
  cluster::Coordinator coordinator(world, cfg.coordinator, std::move(queues), hooks);
  if (context.self.has(config::Role::generator)) run_generator(context, *pipeline, coordinator, 0);
  const cluster::RunSummary summary = coordinator.finish();
  if (summary.stopped) {
    if (world.rank() == 0) {
      spdlog::warn("generate: stopped; finished chunks are in {}; rerun the same command to continue ({} not written)",
                   completions->cache().completions_path(), generation.output);
    }
    return cluster::kExitStopped;
  }
  if (world.rank() == 0) {
    const auto stored = completions->stored();
    const PreparedData& data = pipeline->data();
    const bool with_text = pipeline->tokenizer() != nullptr;
    std::string text;
    for (const Sample& s : data.samples) {
      const auto it = stored.find(s.id);
      GPUJOB_CHECK(it != stored.end(), "generate: sample \"", s.id, "\" has no completion in ",
                   completions->cache().completions_path());
      model::Completion c;
      c.ids = it->second.completion_ids;
      c.text = it->second.completion;
      c.finish_reason = model::parse_finish_reason(it->second.finish_reason);
      const bool id_is_integer = data.prompt_set.rows.at(static_cast<size_t>(s.row_index)).id_is_integer;
      text += completion_record(s.id, id_is_integer, c, with_text)
                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      text += '\n';
    }
    write_output(generation.output, text, data.samples.size());
  }
  return 0;
}

}  // namespace gpujob::jobs
