#include "gpujob/config/load_config.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "yaml_reader.hpp"

namespace gpujob::config {

namespace detail {

template <>
const std::vector<std::pair<const char*, JobKind>>& enum_names<JobKind>() {
  static const std::vector<std::pair<const char*, JobKind>> v = {
      {"extract", JobKind::extract},   {"generate", JobKind::generate},
      {"cache_activations", JobKind::cache_activations}, {"sweep", JobKind::sweep},
      {"spec_thinking", JobKind::spec_thinking}, {"selftest", JobKind::selftest}};
  return v;
}
template <>
const std::vector<std::pair<const char*, DType>>& enum_names<DType>() {
  static const std::vector<std::pair<const char*, DType>> v = {
      {"float32", DType::float32}, {"bfloat16", DType::bfloat16}, {"float16", DType::float16}};
  return v;
}
template <>
const std::vector<std::pair<const char*, DevicePreference>>& enum_names<DevicePreference>() {
  static const std::vector<std::pair<const char*, DevicePreference>> v = {
      {"auto", DevicePreference::automatic}, {"cpu", DevicePreference::cpu}, {"cuda", DevicePreference::cuda}};
  return v;
}
template <>
const std::vector<std::pair<const char*, ChatTemplate>>& enum_names<ChatTemplate>() {
  static const std::vector<std::pair<const char*, ChatTemplate>> v = {
      {"auto", ChatTemplate::automatic}, {"gemma", ChatTemplate::gemma}, {"chatml", ChatTemplate::chatml},
      {"llama3", ChatTemplate::llama3},  {"none", ChatTemplate::none}};
  return v;
}
template <>
const std::vector<std::pair<const char*, TokenPosition>>& enum_names<TokenPosition>() {
  static const std::vector<std::pair<const char*, TokenPosition>> v = {
      {"last", TokenPosition::last}, {"first", TokenPosition::first}, {"middle", TokenPosition::middle},
      {"mean", TokenPosition::mean}, {"all", TokenPosition::all}};
  return v;
}
template <>
const std::vector<std::pair<const char*, Role>>& enum_names<Role>() {
  static const std::vector<std::pair<const char*, Role>> v = {
      {"generator", Role::generator}, {"extractor", Role::extractor},
      {"target_shard", Role::target_shard}, {"draft", Role::draft}};
  return v;
}
template <>
const std::vector<std::pair<const char*, NodeDetection>>& enum_names<NodeDetection>() {
  static const std::vector<std::pair<const char*, NodeDetection>> v = {
      {"auto", NodeDetection::automatic}, {"mpi", NodeDetection::mpi}, {"slurm", NodeDetection::slurm}};
  return v;
}

template <typename E>
const char* enum_name(E value) {
  for (const auto& [text, v] : enum_names<E>()) {
    if (v == value) return text;
  }
  return "?";
}

}  // namespace detail

const char* name(JobKind v) { return detail::enum_name(v); }
const char* name(DType v) { return detail::enum_name(v); }
const char* name(DevicePreference v) { return detail::enum_name(v); }
const char* name(ChatTemplate v) { return detail::enum_name(v); }
const char* name(TokenPosition v) { return detail::enum_name(v); }
const char* name(Role v) { return detail::enum_name(v); }
const char* name(NodeDetection v) { return detail::enum_name(v); }

bool LayoutSettings::any_role() const {
  for (const auto& [role, settings] : roles) {
    if (settings.enabled) return true;
  }
  return false;
}

namespace {

using detail::KeyReader;

ModelSettings read_model(KeyReader r) {
  ModelSettings m;
  m.path = r.get("path", m.path);
  m.dtype = r.get("dtype", m.dtype);
  m.device = r.get("device", m.device);
  m.chat_template = r.get("chat_template", m.chat_template);
  m.enable_thinking = r.get("enable_thinking", m.enable_thinking);
  m.fused_kernels = r.get("fused_kernels", m.fused_kernels);
  r.finish();
  return m;
}

DataSettings read_data(KeyReader r) {
  DataSettings d;
  d.path = r.get("path", d.path);
  d.n = r.get("n", d.n);
  d.shuffle = r.get("shuffle", d.shuffle);
  d.seed = r.get("seed", d.seed);
  d.subjects = r.get("subjects", d.subjects);
  d.template_path = r.get("template", d.template_path);
  r.finish();
  return d;
}

GenerationSettings read_generation(KeyReader r) {
  GenerationSettings g;
  g.max_new_tokens = r.get("max_new_tokens", g.max_new_tokens);
  g.temperature = r.get("temperature", g.temperature);
  g.top_k = r.get("top_k", g.top_k);
  g.top_p = r.get("top_p", g.top_p);
  g.min_p = r.get("min_p", g.min_p);
  g.seed = r.get("seed", g.seed);
  g.stop = r.get("stop", g.stop);
  g.ignore_eos = r.get("ignore_eos", g.ignore_eos);
  g.batch_size = r.get("batch_size", g.batch_size);
  g.max_model_len = r.get("max_model_len", g.max_model_len);
  g.max_prefill_tokens = r.get("max_prefill_tokens", g.max_prefill_tokens);
  g.cuda_graphs = r.get("cuda_graphs", g.cuda_graphs);
  g.output = r.get("output", g.output);
  g.cache_dir = r.get("cache_dir", g.cache_dir);
  r.finish();
  return g;
}

ExtractSettings read_extract(KeyReader r) {
  ExtractSettings e;
  e.layers = r.get("layers", e.layers);
  e.positions = r.get("positions", e.positions);
  e.output = r.get("output", e.output);
  e.dtype = r.get("dtype", e.dtype);
  e.batch_size = r.get("batch_size", e.batch_size);
  r.finish();
  return e;
}

SweepSettings read_sweep(KeyReader r) {
  SweepSettings s;
  s.layers = r.get("layers", s.layers);
  s.positions = r.get("positions", s.positions);
  s.folds = r.get("folds", s.folds);
  s.l2 = r.get("l2", s.l2);
  s.seed = r.get("seed", s.seed);
  s.label = r.get("label", s.label);
  r.finish();
  return s;
}

SpecSettings read_spec(KeyReader r) {
  SpecSettings s;
  s.trigger_tokens = r.get("trigger_tokens", s.trigger_tokens);
  s.max_target_tokens = r.get("max_target_tokens", s.max_target_tokens);
  s.recap_after_negative_num = r.get("recap_after_negative_num", s.recap_after_negative_num);
  s.original_recap_token_num = r.get("original_recap_token_num", s.original_recap_token_num);
  s.add_each_recap = r.get("add_each_recap", s.add_each_recap);
  s.max_recap_token_num = r.get("max_recap_token_num", s.max_recap_token_num);
  s.add_each_neg = r.get("add_each_neg", s.add_each_neg);
  s.max_negative_num = r.get("max_negative_num", s.max_negative_num);
  s.positive_words = r.get("positive_words", s.positive_words);
  s.negative_words = r.get("negative_words", s.negative_words);
  s.verify_words = r.get("verify_words", s.verify_words);
  s.choose_large = r.get("choose_large", s.choose_large);
  s.begin = r.get("begin", s.begin);
  s.begin_token_num = r.get("begin_token_num", s.begin_token_num);
  s.help_recap_words = r.get("help_recap_words", s.help_recap_words);
  s.modes = r.get("modes", s.modes);
  s.num_problems = r.get("num_problems", s.num_problems);
  s.num_runs = r.get("num_runs", s.num_runs);
  s.max_tokens = r.get("max_tokens", s.max_tokens);
  s.problems = r.get("problems", s.problems);
  s.warmup_prompt = r.get("warmup_prompt", s.warmup_prompt);
  s.temperature = r.get("temperature", s.temperature);
  s.top_p = r.get("top_p", s.top_p);
  s.top_k = r.get("top_k", s.top_k);
  s.seed = r.get("seed", s.seed);
  s.output_dir = r.get("output_dir", s.output_dir);
  r.finish();
  return s;
}

RoleSettings read_role(KeyReader r, bool present) {
  RoleSettings s;
  s.enabled = present;
  s.gpus = r.get("gpus", s.gpus);
  s.ranks_per_gpu = r.get("ranks_per_gpu", s.ranks_per_gpu);
  s.memory_fraction = r.get("memory_fraction", s.memory_fraction);
  s.tensor_parallel = r.get("tensor_parallel", s.tensor_parallel);
  r.finish();
  return s;
}

LayoutSettings read_layout(KeyReader r) {
  LayoutSettings l;
  KeyReader roles = r.section("roles");
  for (Role role : kAllRoles) {
    const bool present = roles.has(name(role));
    l.roles[role] = read_role(roles.section(name(role)), present);
  }
  roles.finish();
  l.gpus_per_node = r.get("gpus_per_node", l.gpus_per_node);
  l.node_detection = r.get("node_detection", l.node_detection);
  r.finish();
  return l;
}

CoordinatorSettings read_coordinator(KeyReader r) {
  CoordinatorSettings c;
  c.chunk_size = r.get("chunk_size", c.chunk_size);
  c.progress_interval_s = r.get("progress_interval_s", c.progress_interval_s);
  r.finish();
  return c;
}

SelftestSettings read_selftest(KeyReader r) {
  SelftestSettings s;
  s.num_chunks = r.get("num_chunks", s.num_chunks);
  s.items_per_chunk = r.get("items_per_chunk", s.items_per_chunk);
  s.delay_ms = r.get("delay_ms", s.delay_ms);
  s.delay_ms_by_rank = r.get("delay_ms_by_rank", s.delay_ms_by_rank);
  s.two_stages = r.get("two_stages", s.two_stages);
  s.fail_rank = r.get("fail_rank", s.fail_rank);
  s.fail_chunk = r.get("fail_chunk", s.fail_chunk);
  s.fail_mode = r.get("fail_mode", s.fail_mode);
  r.finish();
  return s;
}

// Reads the whole tree; `job_required` is false only when collecting the known keys.
RunConfig read_run_config(const YAML::Node& root, ConfigSource source, std::set<std::string>* known,
                          bool job_required) {
  RunConfig c;
  c.source = std::move(source);
  detail::ParseContext context{&c.source, known};
  KeyReader r(root, "", context);
  if (job_required && !r.has("job")) {
    c.source.fail("job", "missing; expected one of extract, generate, cache_activations, sweep, "
                         "spec_thinking, selftest");
  }
  c.job = r.get("job", c.job);
  const std::string stem = std::filesystem::path(c.source.file()).stem().string();
  c.run_name = r.get("run_name", stem.empty() ? std::string("run") : stem);
  c.output_dir = r.get("output_dir", c.output_dir);
  c.model = read_model(r.section("model"));
  c.draft_model = read_model(r.section("draft_model"));
  c.data = read_data(r.section("data"));
  c.generation = read_generation(r.section("generation"));
  c.extract = read_extract(r.section("extract"));
  c.sweep = read_sweep(r.section("sweep"));
  c.spec = read_spec(r.section("spec"));
  c.layout = read_layout(r.section("layout"));
  c.coordinator = read_coordinator(r.section("coordinator"));
  c.selftest = read_selftest(r.section("selftest"));
  r.finish();
  return c;
}

void apply_override(YAML::Node& root, const ConfigOverride& o, ConfigSource& source) {
  YAML::Node value;
  try {
    value = YAML::Load(o.value);
  } catch (const YAML::Exception& e) {
    fail("--set ", o.key, ": cannot read '", o.value, "' as YAML: ", e.msg);
  }
  std::vector<std::string> parts;
  std::stringstream keys(o.key);
  for (std::string part; std::getline(keys, part, '.');) {
    if (part.empty()) fail("--set ", o.key, ": empty key in the path");
    parts.push_back(part);
  }
  if (parts.empty()) fail("--set: empty key");
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  YAML::Node node = root;
  std::string path;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    path += (i ? "." : "") + parts[i];
    YAML::Node next = node[parts[i]];
    if (!next.IsDefined() || next.IsNull()) next = YAML::Node(YAML::NodeType::Map);
    if (!next.IsMap()) fail("--set ", o.key, ": ", path, " is not a map of settings");
    node[parts[i]] = next;
    node.reset(next);  // rebinds the handle; plain assignment would overwrite the value
  }
  node[parts.back()] = value;
  source.mark_override(o.key);
}

}  // namespace

ConfigOverride parse_override(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    fail("--set ", text, ": expected key.path=value");
  }
  return {text.substr(0, eq), text.substr(eq + 1)};
}

RunConfig parse_run_config(const std::string& yaml_text, const std::string& file_name,
                           const std::vector<ConfigOverride>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail(file_name, ":", e.mark.line + 1, ": not valid YAML: ", e.msg);
  }
  if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
    fail(file_name, ":1: found ", detail::describe_node(root), ", expected a map of settings");
  }
  ConfigSource source(file_name);
  for (const auto& o : overrides) apply_override(root, o, source);
  RunConfig config = read_run_config(root, std::move(source), nullptr, true);
  validate_run_config(config);
  return config;
}

RunConfig load_run_config(const std::string& path, const std::vector<ConfigOverride>& overrides) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open the config file");
  std::stringstream text;
  text << in.rdbuf();
  return parse_run_config(text.str(), path, overrides);
}

std::vector<std::string> known_config_keys() {
  std::set<std::string> known;
  read_run_config(YAML::Node(YAML::NodeType::Map), ConfigSource("keys"), &known, false);
  return {known.begin(), known.end()};
}

}  // namespace gpujob::config
