// Job spec_thinking: groups and shards from the layout, the driver's benchmark loop, the members' serve loops.
#include "jobs/spec_thinking.hpp"

#include "gpujob/cluster/nccl_collectives.hpp"
#include "gpujob/cluster/remote_model.hpp"
#include "gpujob/cluster/shard_collectives.hpp"
#include "gpujob/cluster/spec_groups.hpp"
#include "gpujob/io/jsonl.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/decoder_sequence_model.hpp"
#include "gpujob/model/model_config.hpp"
#include "gpujob/model/speculative_thinking.hpp"
#include "gpujob/model/stop_conditions.hpp"
#include "gpujob/text/chat_template.hpp"
#include "gpujob/text/tokenizer.hpp"
#include "gpujob/util/error.hpp"
#include "gpujob/util/log.hpp"
#include "jobs/spec_thinking_benchmark.hpp"

#ifdef GPUJOB_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <chrono>
#include <cstdio>
#include <memory>

namespace gpujob::jobs {

namespace {

// The instruction of the usual AIME prompt for reasoning models, after the problem.
constexpr const char* kInstruction = "\nPlease reason step by step, and put your final answer within \\boxed{}.";

struct Problem {
  std::string id;
  std::string problem;
  std::string answer;
};

std::vector<Problem> read_problems(const config::SpecSettings& spec) {
  GPUJOB_CHECK(!spec.problems.empty(), "spec.problems: required by job spec_thinking (a JSONL of problem/answer rows)");
  std::vector<Problem> out;
  for (const io::JsonlRecord& r : io::read_jsonl(spec.problems)) {
    if (!r.value.is_object() || !r.value.contains("problem") || !r.value["problem"].is_string()) {
      io::fail_key(spec.problems, r.line, "problem", "a string");
    }
    Problem p;
    p.problem = r.value["problem"].get<std::string>();
    if (r.value.contains("answer")) {
      const nlohmann::json& a = r.value["answer"];
      p.answer = a.is_string() ? a.get<std::string>() : a.dump();
    }
    p.id = r.value.contains("id") && r.value["id"].is_string() ? r.value["id"].get<std::string>()
                                                               : "line" + std::to_string(r.line);
    out.push_back(std::move(p));
    if (spec.num_problems > 0 && static_cast<int>(out.size()) == spec.num_problems) break;
  }
  GPUJOB_CHECK(!out.empty(), spec.problems, ": no problems");
  return out;
}

at::ScalarType scalar_type(config::DType d) {
  switch (d) {
    case config::DType::float32: return at::kFloat;
    case config::DType::bfloat16: return at::kBFloat16;
    case config::DType::float16: return at::kHalf;
  }
  return at::kFloat;
}

bool on_cuda(const config::ModelSettings& m, int visible_gpus) {
  switch (m.device) {
    case config::DevicePreference::cpu: return false;
    case config::DevicePreference::cuda: return true;
    case config::DevicePreference::automatic: return visible_gpus > 0;
  }
  return false;
}

// This rank's model: its shard of the target or of the draft, on its GPU or the CPU.
struct LocalShard {
  std::unique_ptr<model::Collectives> collectives;
  std::unique_ptr<model::Decoder> decoder;
  std::unique_ptr<text::Tokenizer> tokenizer;  // draft ranks (stop strings, prompts, keywords)
  std::unique_ptr<model::DecoderSequenceModel> sequence;
};

LocalShard load_shard(const config::RunConfig& config, const cluster::RoleAssignment& role, cluster::SpecGroups& groups,
                      int visible_gpus) {
  const bool target = role.role == config::Role::target_shard;
  const config::ModelSettings& settings = target ? config.model : config.draft_model;
  GPUJOB_CHECK(!settings.path.empty(), target ? "model.path" : "draft_model.path", ": required by job spec_thinking");
  LocalShard shard;
  model::LoadOptions options;
  options.dtype = scalar_type(settings.dtype);
  options.shard_index = role.group_rank;
  options.shard_count = role.group_size;
  const bool cuda = on_cuda(settings, visible_gpus);
  if (cuda) {
    GPUJOB_CHECK(cluster::NcclCollectives::available(), target ? "model.device" : "draft_model.device",
                 ": cuda requested, but this build has no CUDA support");
    options.device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(role.gpu));
#ifdef GPUJOB_WITH_CUDA
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(role.gpu));
    // Two models share a GPU in the 2-GPU layout: each rank keeps to its fraction.
    c10::cuda::CUDACachingAllocator::setMemoryFraction(role.memory_fraction, role.gpu);
#endif
  }
  cluster::Communicator& group = target ? groups.target_group : groups.draft_group;
  if (role.group_size > 1) {
    shard.collectives = cluster::make_shard_collectives(group, cuda, role.gpu);
    options.collectives = shard.collectives.get();
  }
  shard.decoder = model::Decoder::load(settings.path, options);
  model::DecodeFn decode;
  if (!target) {
    shard.tokenizer = text::load_tokenizer(settings.path);
    const text::Tokenizer* tok = shard.tokenizer.get();
    decode = [tok](const std::vector<int64_t>& ids) {
      return tok->decode(std::vector<int32_t>(ids.begin(), ids.end()), true);
    };
  }
  shard.sequence = std::make_unique<model::DecoderSequenceModel>(
      *shard.decoder, config.generation.max_model_len, model::read_eos_token_ids(settings.path), decode);
  return shard;
}

std::vector<int64_t> encode_prompt(const text::Tokenizer& tokenizer, const config::ModelSettings& m,
                                   const std::string& content) {
  std::string text = content;
  if (m.chat_template != config::ChatTemplate::none) {
    const std::string name = m.chat_template == config::ChatTemplate::automatic ? "" : config::name(m.chat_template);
    text::ChatOptions options;
    options.add_generation_prompt = true;
    options.enable_thinking = m.enable_thinking;
    options.bos_token = tokenizer.config().bos_token;
    text = text::ChatTemplate::for_tokenizer(tokenizer, name).render({{"user", content, std::nullopt}}, options);
  }
  // The rendered template carries its special tokens already (as apply_chat_template's tokenize).
  const std::vector<int32_t> ids = tokenizer.encode(text, m.chat_template == config::ChatTemplate::none);
  return {ids.begin(), ids.end()};
}

model::SpecThinkingParams algorithm_params(const config::SpecSettings& s, const text::Tokenizer& tokenizer) {
  model::SpecThinkingParams p;
  p.trigger_tokens = s.trigger_tokens;
  p.max_target_tokens = s.max_target_tokens;
  p.recap_after_negative_num = s.recap_after_negative_num;
  p.original_recap_token_num = s.original_recap_token_num;
  p.add_each_recap = s.add_each_recap;
  p.max_recap_token_num = s.max_recap_token_num;
  p.add_each_neg = s.add_each_neg;
  p.max_negative_num = s.max_negative_num;
  p.positive_words = s.positive_words;
  p.negative_words = s.negative_words;
  p.verify_words = s.verify_words;
  p.choose_large = s.choose_large;
  p.begin = s.begin;
  p.begin_token_num = s.begin_token_num;
  const std::vector<int32_t> help = tokenizer.encode(s.help_recap_words, false);
  p.help_recap_ids.assign(help.begin(), help.end());
  return p;
}

nlohmann::json settings_json(const config::RunConfig& c) {
  const config::SpecSettings& s = c.spec;
  return {{"target_model", c.model.path},
          {"draft_model", c.draft_model.path},
          {"problems", s.problems},
          {"num_problems", s.num_problems},
          {"num_runs", s.num_runs},
          {"max_tokens", s.max_tokens},
          {"temperature", s.temperature},
          {"top_p", s.top_p},
          {"top_k", s.top_k},
          {"seed", s.seed},
          {"trigger_tokens", s.trigger_tokens},
          {"max_target_tokens", s.max_target_tokens},
          {"recap_after_negative_num", s.recap_after_negative_num},
          {"original_recap_token_num", s.original_recap_token_num},
          {"add_each_recap", s.add_each_recap},
          {"max_recap_token_num", s.max_recap_token_num},
          {"add_each_neg", s.add_each_neg},
          {"max_negative_num", s.max_negative_num},
          {"positive_words", s.positive_words},
          {"negative_words", s.negative_words},
          {"verify_words", s.verify_words},
          {"choose_large", s.choose_large},
          {"begin", s.begin},
          {"begin_token_num", s.begin_token_num},
          {"help_recap_words", s.help_recap_words}};
}

// The driver's part: every mode over problems x runs, after one warm-up per mode.
std::vector<std::string> drive(const config::RunConfig& config, model::SequenceModel& small, model::SequenceModel& large,
                               const text::Tokenizer& tokenizer) {
  const config::SpecSettings& s = config.spec;
  const std::vector<Problem> problems = read_problems(s);
  std::vector<SpecMode> modes;
  for (const std::string& m : s.modes) modes.push_back(parse_spec_mode(m));
  GPUJOB_CHECK(!modes.empty(), "spec.modes: expected at least one of large, small, spec");
  GPUJOB_CHECK(s.num_runs >= 1, "spec.num_runs: expected >= 1, found ", s.num_runs);
  GPUJOB_CHECK(s.max_tokens >= 1, "spec.max_tokens: expected >= 1, found ", s.max_tokens);

  model::SamplingParams sampling;
  sampling.temperature = s.temperature;
  sampling.top_p = s.top_p;
  sampling.top_k = s.top_k;
  sampling.seed = static_cast<uint64_t>(s.seed);
  model::validate_sampling(sampling);
  model::SpeculativeThinking algorithm(small, large,
                                       [&tokenizer](const std::vector<int64_t>& ids) {
                                         return tokenizer.decode(std::vector<int32_t>(ids.begin(), ids.end()), true);
                                       },
                                       algorithm_params(s, tokenizer));

  auto run_once = [&](SpecMode mode, const std::vector<int64_t>& prompt, uint64_t key) {
    GPUJOB_CHECK(static_cast<int64_t>(prompt.size()) + s.max_tokens <= config.generation.max_model_len,
                 "generation.max_model_len = ", config.generation.max_model_len, " is below a prompt of ",
                 prompt.size(), " tokens + spec.max_tokens = ", s.max_tokens, " (raise it)");
    switch (mode) {
      case SpecMode::large: return model::generate_alone(large, prompt, s.max_tokens, sampling, key, true);
      case SpecMode::small: return model::generate_alone(small, prompt, s.max_tokens, sampling, key, false);
      case SpecMode::spec: return algorithm.run(prompt, s.max_tokens, sampling, key);
    }
    fail("spec_thinking: unknown mode");
  };

  std::vector<std::vector<int64_t>> prompts;
  for (const Problem& p : problems) prompts.push_back(encode_prompt(tokenizer, config.draft_model, p.problem + kInstruction));
  const std::vector<int64_t> warmup = encode_prompt(tokenizer, config.draft_model, s.warmup_prompt);

  std::vector<SpecModeSummary> summaries;
  for (SpecMode mode : modes) {
    spdlog::info("spec_thinking: mode {}: warm-up, then {} problems x {} runs", name(mode), problems.size(), s.num_runs);
    run_once(mode, warmup, model::stream_key_for_id("warmup"));
    SpecModeSummary summary;
    summary.mode = mode;
    for (size_t i = 0; i < problems.size(); ++i) {
      for (int run = 0; run < s.num_runs; ++run) {
        const uint64_t key = model::stream_key_for_id(problems[i].id + "#" + std::to_string(run));
        const auto start = std::chrono::steady_clock::now();
        const model::SpecThinkingResult r = run_once(mode, prompts[i], key);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        SpecRunRecord rec;
        rec.problem_id = problems[i].id;
        rec.run = run;
        rec.latency_s = seconds;
        rec.tokens = r.generated();
        rec.throughput = seconds > 0 ? static_cast<double>(rec.tokens) / seconds : 0.0;
        rec.large_model_ratio = r.large_model_ratio();
        rec.large_tokens = r.large_tokens;
        rec.small_tokens = r.small_tokens;
        rec.inserted_tokens = r.inserted_tokens;
        rec.discarded_tokens = r.discarded_small_tokens + r.discarded_large_tokens;
        rec.drafts = r.drafts;
        rec.recaps = r.recaps;
        rec.eos = r.eos;
        rec.expected_answer = problems[i].answer;
        rec.answer = last_boxed_answer(tokenizer.decode(std::vector<int32_t>(r.tokens.begin(), r.tokens.end()), true));
        rec.correct = answers_match(rec.answer, rec.expected_answer);
        spdlog::info("spec_thinking: {} {} run {}: {:.3f} s, {} tokens, {:.2f} tok/s, large {:.1f}%", name(mode),
                     rec.problem_id, run, rec.latency_s, rec.tokens, rec.throughput, 100.0 * rec.large_model_ratio);
        summary.runs.push_back(std::move(rec));
      }
    }
    summaries.push_back(std::move(summary));
  }
  const std::vector<std::string> files =
      write_benchmark_files(s.output_dir, benchmark_stamp(), summaries, settings_json(config));
  std::printf("%s", format_benchmark_table(summaries).c_str());
  for (const std::string& f : files) std::printf("wrote %s\n", f.c_str());
  std::fflush(stdout);
  return files;
}

}  // namespace

int run_spec_thinking_job(JobContext& context) {
  const config::RunConfig& config = context.config;
  const cluster::RankPlacement& placement = context.self;
  const cluster::RoleAssignment* target = placement.find(config::Role::target_shard);
  const cluster::RoleAssignment* draft = placement.find(config::Role::draft);
  cluster::SpecRankRole me;
  me.target_shard = target != nullptr;
  me.draft = draft != nullptr;
  const cluster::RoleAssignment* mine = target != nullptr ? target : draft;
  if (mine != nullptr) {
    me.group_rank = mine->group_rank;
    me.group_size = mine->group_size;
  }
  // Collective: every rank checks the same table, and no rank is left out of a split.
  cluster::SpecGroups groups = cluster::make_spec_groups(context.world.comm(), me);
  GPUJOB_CHECK(mine != nullptr, "spec_thinking: rank ", placement.rank, " holds neither target_shard nor draft");

  // Both models must speak the same vocabulary: checked on every rank before any model loads.
  const model::ModelConfig target_config = model::load_model_config(config.model.path + "/config.json");
  const model::ModelConfig draft_config = model::load_model_config(config.draft_model.path + "/config.json");
  GPUJOB_CHECK(target_config.vocab_size == draft_config.vocab_size, "spec_thinking: model.path (",
               config.model.path, ") has vocab_size ", target_config.vocab_size, " but draft_model.path (",
               config.draft_model.path, ") has ", draft_config.vocab_size, "; the models must share a tokenizer");

  LocalShard shard = load_shard(config, *mine, groups, context.visible_gpus);
  spdlog::info("spec_thinking: rank {} holds {} shard {} of {}", placement.rank, config::name(mine->role),
               mine->group_rank, mine->group_size);
  if (!groups.driver) {
    if (me.target_shard) {
      cluster::serve_remote_model(groups.target_channel.get(), groups.target_leader, *shard.sequence);
    } else {
      cluster::serve_remote_model(groups.draft_channel.get(), 0, *shard.sequence);
    }
    return 0;
  }
  cluster::RemoteModel large(groups.target_channel.get(), groups.target_leader, nullptr);
  cluster::RemoteModel small(groups.draft_channel.get(), 0, shard.sequence.get());
  drive(config, small, large, *shard.tokenizer);
  large.shutdown();
  small.shutdown();
  return 0;
}

}  // namespace gpujob::jobs
