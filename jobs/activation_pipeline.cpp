#include "jobs/activation_pipeline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gpujob/io/activation_reader.hpp"
#include "gpujob/io/answer.hpp"
#include "gpujob/io/fingerprint.hpp"
#include "gpujob/model/model_config.hpp"
#include "gpujob/util/error.hpp"
#include "jobs/extraction.hpp"
#include "jobs/generate.hpp"

namespace gpujob::jobs {
namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string folder_name(const std::string& path) {
  std::filesystem::path p(path);
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// Every setting that changes a completion (batch size and rank count do not, by design).
nlohmann::json generation_identity(const config::RunConfig& config) {
  const auto& g = config.generation;
  return {{"max_new_tokens", g.max_new_tokens}, {"temperature", g.temperature}, {"top_k", g.top_k},
          {"top_p", g.top_p},  {"min_p", g.min_p},  {"seed", g.seed},  {"stop", g.stop},
          {"ignore_eos", g.ignore_eos}, {"dtype", config::name(config.model.dtype)},
          {"chat_template", config::name(config.model.chat_template)},
          {"enable_thinking", config.model.enable_thinking}};
}

}  // namespace

ActivationPipeline::ActivationPipeline(const config::RunConfig& config, bool with_generation)
    : config_(config), with_generation_(with_generation) {
  tokenizer_ = load_model_tokenizer(config.model.path);
  data_ = prepare_samples(config, tokenizer_.get());
  model_fingerprint_ = io::model_fingerprint(config.model.path);
  const auto model_config = model::load_model_config(config.model.path + "/config.json");
  hidden_size_ = model_config.hidden_size;
  architecture_ = model_config.architecture;
}

int64_t ActivationPipeline::num_chunks() const {
  const int64_t size = std::max(1, config_.coordinator.chunk_size);
  return (num_samples() + size - 1) / size;
}

ChunkRange ActivationPipeline::chunk(int64_t index) const {
  const int64_t size = std::max(1, config_.coordinator.chunk_size);
  GPUJOB_CHECK(index >= 0 && index < num_chunks(), "chunk ", index, " is outside [0, ", num_chunks(), ")");
  ChunkRange range;
  range.first = index * size;
  range.count = std::min(size, num_samples() - range.first);
  return range;
}

io::GenerationCacheKey ActivationPipeline::cache_key() const {
  io::GenerationCacheKey key;
  key.model_name = folder_name(config_.model.path);
  key.model = model_fingerprint_;
  key.template_name = data_.prompt_template.name.empty() ? "no-template" : data_.prompt_template.name;
  key.template_text = data_.prompt_template.source;
  key.data = io::describe_selection(data_.prompt_set, data_.selection);
  key.generation = generation_identity(config_);
  return key;
}

std::string ActivationPipeline::cache_dir() const {
  return config_.generation.cache_dir.empty() ? config_.output_dir + "/cache" : config_.generation.cache_dir;
}

std::vector<int64_t> ActivationPipeline::chunks_to_generate(
    const std::map<std::string, io::CachedSample>& stored) const {
  std::vector<int64_t> out;
  for (int64_t c = 0; c < num_chunks(); ++c) {
    const auto range = chunk(c);
    for (int64_t i = range.first; i < range.first + range.count; ++i) {
      if (!stored.count(data_.samples[i].id)) {
        out.push_back(c);
        break;
      }
    }
  }
  return out;
}

std::string ActivationPipeline::payload_from_cache(int64_t c,
                                                   const std::map<std::string, io::CachedSample>& stored) const {
  const auto range = chunk(c);
  nlohmann::json payload = nlohmann::json::array();
  for (int64_t i = range.first; i < range.first + range.count; ++i) {
    const auto& s = stored.at(data_.samples[i].id);
    payload.push_back({{"completion_ids", s.completion_ids}, {"completion", s.completion},
                       {"finish_reason", s.finish_reason}});
  }
  return payload.dump();
}

std::vector<io::CachedSample> ActivationPipeline::cache_records(int64_t c, const std::string& payload) const {
  const auto range = chunk(c);
  const auto items = nlohmann::json::parse(payload);
  GPUJOB_CHECK(items.is_array() && static_cast<int64_t>(items.size()) == range.count, "chunk ", c,
               ": a generator returned ", items.size(), " completions for ", range.count, " samples");
  std::vector<io::CachedSample> out;
  for (int64_t k = 0; k < range.count; ++k) {
    const Sample& sample = data_.samples[range.first + k];
    const auto& item = items[k];
    io::CachedSample record;
    record.id = sample.id;
    record.prompt = sample.prompt;
    record.prompt_ids = sample.prompt_ids;
    record.completion = item.at("completion").get<std::string>();
    record.completion_ids = item.at("completion_ids").get<std::vector<int64_t>>();
    record.finish_reason = item.at("finish_reason").get<std::string>();
    record.subject = sample.subject;
    if (sample.correct_index >= 0) {
      const auto parsed = io::parse_answer(record.completion, sample.num_choices);
      record.predicted = parsed.letter;
      record.correct_answer = io::choice_letter(sample.correct_index);
      record.label = io::answer_label(parsed, sample.correct_index);
    }
    out.push_back(std::move(record));
  }
  return out;
}

std::string ActivationPipeline::generate_chunk(model::SlotModel& model, const model::GeneratorOptions& options,
                                               int64_t c) const {
  const auto range = chunk(c);
  const std::vector<Sample> samples(data_.samples.begin() + range.first,
                                    data_.samples.begin() + range.first + range.count);
  const auto completions = generate_completions(model, samples, options);
  nlohmann::json payload = nlohmann::json::array();
  for (const auto& completion : completions) {
    payload.push_back({{"completion_ids", completion.ids}, {"completion", completion.text},
                       {"finish_reason", model::finish_reason_name(completion.finish_reason)}});
  }
  return payload.dump();
}

std::string ActivationPipeline::output_path() const {
  return config_.extract.output.empty() ? config_.run_dir() + "/activations.h5" : config_.extract.output;
}

io::ActivationFileSpec ActivationPipeline::file_spec() const {
  io::ActivationFileSpec spec;
  spec.hidden_size = hidden_size_;
  spec.datasets = requested_datasets(config_.extract);
  for (const auto& s : data_.samples) spec.sample_ids.push_back(s.id);
  const bool wants_all = std::any_of(spec.datasets.begin(), spec.datasets.end(),
                                     [](const auto& d) { return d.position == "all"; });
  if (wants_all) {
    // Rows reserved per sample: its prompt plus the most a completion can add (completions may
    // still be in flight when the file is created); /samples/num_tokens says how many are used.
    for (const auto& s : data_.samples) {
      spec.token_capacity.push_back(static_cast<int64_t>(s.prompt_ids.size()) +
                                    (with_generation_ ? config_.generation.max_new_tokens : 0));
    }
  }
  spec.dtype = config_.extract.dtype == config::DType::float16 ? io::ActivationDtype::kFloat16
                                                               : io::ActivationDtype::kFloat32;
  nlohmann::json identity = {
      {"model", model_fingerprint_},
      {"data", io::describe_selection(data_.prompt_set, data_.selection)},
      {"template", data_.prompt_template.source},
      {"generation", with_generation_ ? generation_identity(config_) : nlohmann::json(nullptr)},
      {"layers", config_.extract.layers},
      {"positions", nlohmann::json::array()},
      {"model_dtype", config::name(config_.model.dtype)},
      {"stored_dtype", config::name(config_.extract.dtype)},
      {"chunk_size", config_.coordinator.chunk_size}};
  for (auto p : config_.extract.positions) identity["positions"].push_back(config::name(p));
  spec.fingerprint = io::fnv1a64_hex(identity.dump());
  spec.string_attributes = {
      {"model", config_.model.path},
      {"architecture", architecture_},
      {"config", read_text_file(config_.source.file())},
      {"config_path", config_.source.file()},
      {"template", data_.prompt_template.name},
      {"generation", with_generation_ ? generation_identity(config_).dump() : std::string("none")},
      {"data", config_.data.path}};
  spec.int_attributes = {{"num_samples", num_samples()}, {"chunk_size", config_.coordinator.chunk_size}};
  return spec;
}

std::vector<std::vector<int64_t>> ActivationPipeline::sequences(int64_t c, const std::string& payload) const {
  const auto range = chunk(c);
  std::vector<std::vector<int64_t>> out;
  out.reserve(range.count);
  nlohmann::json items;
  if (with_generation_) {
    items = nlohmann::json::parse(payload);
    GPUJOB_CHECK(items.is_array() && static_cast<int64_t>(items.size()) == range.count, "chunk ", c,
                 ": extraction received ", items.size(), " completions for ", range.count, " samples");
  }
  for (int64_t k = 0; k < range.count; ++k) {
    std::vector<int64_t> ids = data_.samples[range.first + k].prompt_ids;
    if (with_generation_) {
      const auto completion = items[k].at("completion_ids").get<std::vector<int64_t>>();
      ids.insert(ids.end(), completion.begin(), completion.end());
    }
    out.push_back(std::move(ids));
  }
  return out;
}

std::vector<int64_t> ActivationPipeline::special_token_ids() const {
  if (!tokenizer_) return {};
  return {tokenizer_->special_ids().begin(), tokenizer_->special_ids().end()};
}

void ActivationPipeline::write_sample_strings(const std::map<std::string, io::CachedSample>& stored) const {
  io::SampleStrings strings;
  for (const auto& s : data_.samples) {
    strings.prompt.push_back(s.prompt);
    strings.subject.push_back(s.subject);
    auto it = stored.find(s.id);
    if (with_generation_) {
      GPUJOB_CHECK(it != stored.end(), "sample \"", s.id, "\" has no completion in the cache");
      strings.completion.push_back(it->second.completion);
      strings.predicted.push_back(it->second.predicted);
      strings.correct_answer.push_back(it->second.correct_answer);
      strings.label.push_back(config_.sweep.label == "data" ? s.data_label : it->second.label);
    } else {
      strings.correct_answer.push_back(s.correct_index >= 0 ? io::choice_letter(s.correct_index) : "");
      strings.label.push_back(s.data_label);
    }
  }
  io::write_sample_strings(output_path(), strings);
}

std::map<std::string, io::CachedSample> load_cache_by_id(const io::GenerationCache& cache) {
  std::map<std::string, io::CachedSample> out;
  for (auto& s : cache.load()) out[s.id] = std::move(s);
  return out;
}

}  // namespace gpujob::jobs
