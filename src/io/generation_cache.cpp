#include "gpujob/io/generation_cache.hpp"

#include "gpujob/io/fingerprint.hpp"
#include "gpujob/io/jsonl.hpp"
#include "gpujob/util/error.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

namespace gpujob::io {

namespace fs = std::filesystem;

namespace {

std::string folder_name(std::string name, const char* what) {
  GPUJOB_CHECK(!name.empty(), "generation cache: empty ", what, " name");
  for (size_t pos = name.find('/'); pos != std::string::npos; pos = name.find('/', pos + 2)) name.replace(pos, 1, "--");
  GPUJOB_CHECK(name != "." && name != "..", "generation cache: invalid ", what, " name \"", name, "\"");
  return name;
}

template <typename T>
T field(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) fail(where, ": key \"", key, "\": missing");
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    fail(where, ": key \"", key, "\": unexpected type ", it->type_name());
  }
}

}  // namespace

nlohmann::json GenerationCacheKey::to_json() const {
  return nlohmann::json{{"model_name", model_name}, {"model", model},         {"template_name", template_name},
                        {"template", template_text}, {"data", data},           {"generation", generation},
                        {"format", 1}};
}

std::string GenerationCacheKey::hash() const { return fnv1a64_hex(to_json().dump()); }

nlohmann::json model_fingerprint(const std::string& model_dir) {
  const fs::path dir(model_dir);
  GPUJOB_CHECK(fs::is_regular_file(dir / "config.json"), model_dir, ": not a model folder (no config.json)");
  nlohmann::json small_files = nlohmann::json::object();
  nlohmann::json weights = nlohmann::json::object();
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end());
  for (const auto& p : entries) {
    if (!fs::is_regular_file(p)) continue;
    const std::string name = p.filename().string();
    const std::string ext = p.extension().string();
    if (ext == ".safetensors" || ext == ".bin" || ext == ".pt" || name == "model.safetensors.index.json") {
      weights[name] = static_cast<int64_t>(fs::file_size(p));
    } else if (name == "config.json" || name == "generation_config.json" || name.rfind("tokenizer", 0) == 0 ||
               name == "chat_template.jinja" || name == "chat_template.json" || name == "special_tokens_map.json") {
      small_files[name] = fnv1a64_hex(read_text_file(p.string()));
    }
  }
  GPUJOB_CHECK(!weights.empty(), model_dir, ": no weight files (*.safetensors or *.bin)");
  return nlohmann::json{{"files", small_files}, {"weights", weights}};
}

nlohmann::json CachedSample::to_json() const {
  return nlohmann::json{{"id", id},
                        {"prompt", prompt},
                        {"completion", completion},
                        {"prompt_ids", prompt_ids},
                        {"completion_ids", completion_ids},
                        {"finish_reason", finish_reason},
                        {"predicted", predicted},
                        {"correct_answer", correct_answer},
                        {"label", label},
                        {"subject", subject}};
}

CachedSample CachedSample::from_json(const nlohmann::json& j, const std::string& where) {
  GPUJOB_CHECK(j.is_object(), where, ": expected a JSON object");
  CachedSample s;
  s.id = field<std::string>(j, "id", where);
  s.prompt = field<std::string>(j, "prompt", where);
  s.completion = field<std::string>(j, "completion", where);
  s.prompt_ids = field<std::vector<int64_t>>(j, "prompt_ids", where);
  s.completion_ids = field<std::vector<int64_t>>(j, "completion_ids", where);
  s.finish_reason = field<std::string>(j, "finish_reason", where);
  s.predicted = field<std::string>(j, "predicted", where);
  s.correct_answer = field<std::string>(j, "correct_answer", where);
  s.label = field<int>(j, "label", where);
  s.subject = field<std::string>(j, "subject", where);
  return s;
}

GenerationCache::GenerationCache(const std::string& cache_dir, const GenerationCacheKey& key) {
  directory_ = (fs::path(cache_dir) / folder_name(key.model_name, "model") / folder_name(key.template_name, "template") /
                key.hash()).string();
  std::error_code ec;
  fs::create_directories(directory_, ec);
  GPUJOB_CHECK(!ec, directory_, ": cannot create the cache folder: ", ec.message());
  const nlohmann::json wanted = key.to_json();
  if (!fs::exists(key_path())) {
    write_file_atomically(key_path(), wanted.dump(2) + "\n");
    return;
  }
  nlohmann::json stored;
  try {
    stored = nlohmann::json::parse(read_text_file(key_path()));
  } catch (const nlohmann::json::exception& e) {
    fail(key_path(), ": invalid JSON (", e.what(), "); delete ", directory_, " to regenerate");
  }
  if (stored == wanted) return;
  std::string differing = "format";
  for (const auto& [name, value] : wanted.items()) {
    if (!stored.contains(name) || stored[name] != value) {
      differing = name;
      break;
    }
  }
  fail(key_path(), ": the stored key differs from this run's in \"", differing,
       "\" (a hash collision or an edited cache); refusing to mix completions: delete ", directory_);
}

std::vector<CachedSample> GenerationCache::load() const {
  const std::string path = completions_path();
  std::vector<CachedSample> samples;
  std::map<std::string, size_t> position;
  for (const auto& rec : read_jsonl_if_exists(path)) {
    auto s = CachedSample::from_json(rec.value, path + ":" + std::to_string(rec.line));
    const auto [it, inserted] = position.emplace(s.id, samples.size());
    if (inserted) {
      samples.push_back(std::move(s));
    } else {
      samples[it->second] = std::move(s);  // a chunk redone after a crash: the last line wins
    }
  }
  return samples;
}

void GenerationCache::append(const std::vector<CachedSample>& samples) {
  std::vector<nlohmann::json> lines;
  lines.reserve(samples.size());
  for (const auto& s : samples) lines.push_back(s.to_json());
  JsonlAppender(completions_path()).append_all(lines);
}

std::vector<std::string> missing_ids(const std::vector<std::string>& wanted, const std::vector<CachedSample>& stored) {
  std::set<std::string> have;
  for (const auto& s : stored) have.insert(s.id);
  std::vector<std::string> missing;
  for (const auto& id : wanted) {
    if (!have.count(id)) missing.push_back(id);
  }
  return missing;
}

}  // namespace gpujob::io
