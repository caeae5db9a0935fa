// Per-job checks of a parsed run config: required keys and value ranges, each a one-line error.
#include <set>

#include "gpujob/config/load_config.hpp"

namespace gpujob::config {

namespace {

void require_text(const RunConfig& c, const std::string& key, const std::string& value, const char* what) {
  if (value.empty()) c.source.fail(key, "missing; job ", name(c.job), " needs ", what);
}

void require_positive(const RunConfig& c, const std::string& key, double value) {
  if (!(value > 0)) c.source.fail(key, "found ", value, ", expected a value > 0");
}

void check_model(const RunConfig& c, const std::string& key, const ModelSettings& m) {
  require_text(c, key + ".path", m.path, "a model directory (config.json, *.safetensors)");
}

void check_layers(const RunConfig& c, const std::string& key, const std::vector<int>& layers) {
  std::set<int> seen;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string item = key + "[" + std::to_string(i) + "]";
    if (layers[i] < 0) c.source.fail(item, "found ", layers[i], ", expected a layer index >= 0");
    if (!seen.insert(layers[i]).second) c.source.fail(item, "layer ", layers[i], " is listed twice");
  }
}

void check_role(const RunConfig& c, Role role, const RoleSettings& r) {
  const std::string key = std::string("layout.roles.") + name(role);
  if (!r.enabled) return;
  if (r.gpus.empty()) c.source.fail(key + ".gpus", "missing or empty; expected node-local GPU ids such as [0, 1]");
  std::set<int> seen;
  for (size_t i = 0; i < r.gpus.size(); ++i) {
    const std::string item = key + ".gpus[" + std::to_string(i) + "]";
    if (r.gpus[i] < 0) c.source.fail(item, "found ", r.gpus[i], ", expected a GPU id >= 0");
    if (!seen.insert(r.gpus[i]).second) c.source.fail(item, "GPU ", r.gpus[i], " is listed twice");
  }
  if (r.ranks_per_gpu < 1) c.source.fail(key + ".ranks_per_gpu", "found ", r.ranks_per_gpu, ", expected >= 1");
  if (r.memory_fraction < 0 || r.memory_fraction > 1) {
    c.source.fail(key + ".memory_fraction", "found ", r.memory_fraction, ", expected a fraction in (0, 1]");
  }
  const bool sharded = role == Role::target_shard || role == Role::draft;
  if (!sharded && r.tensor_parallel != 0 && r.tensor_parallel != 1) {
    c.source.fail(key + ".tensor_parallel", "found ", r.tensor_parallel,
                  ", expected 1 (only target_shard and draft are tensor-parallel)");
  }
  if (sharded && r.tensor_parallel != 0) {
    if (r.tensor_parallel < 1 || r.ranks() % r.tensor_parallel != 0) {
      c.source.fail(key + ".tensor_parallel", "found ", r.tensor_parallel, ", expected a divisor of the role's ",
                    r.ranks(), " ranks (", r.gpus.size(), " GPUs x ", r.ranks_per_gpu, " per GPU)");
    }
  }
}

}  // namespace

void validate_run_config(const RunConfig& c) {
  const JobKind job = c.job;
  const bool uses_model = job != JobKind::selftest;
  if (uses_model) check_model(c, "model", c.model);
  if (c.run_name.empty() || c.run_name.find('/') != std::string::npos) {
    c.source.fail("run_name", "found \"", c.run_name, "\", expected a non-empty name without '/'");
  }
  if (job == JobKind::extract || job == JobKind::generate || job == JobKind::cache_activations ||
      job == JobKind::sweep) {
    require_text(c, "data.path", c.data.path, "a JSONL prompt file");
  }
  if (c.data.n < 0) c.source.fail("data.n", "found ", c.data.n, ", expected >= 0 (0 = all rows)");

  const GenerationSettings& g = c.generation;
  if (job == JobKind::generate) require_text(c, "generation.output", g.output, "a JSONL file to write");
  require_positive(c, "generation.max_new_tokens", g.max_new_tokens);
  require_positive(c, "generation.batch_size", g.batch_size);
  require_positive(c, "generation.max_model_len", g.max_model_len);
  require_positive(c, "generation.max_prefill_tokens", g.max_prefill_tokens);
  if (g.temperature < 0) c.source.fail("generation.temperature", "found ", g.temperature, ", expected >= 0 (0 = greedy)");
  if (g.top_k < 0) c.source.fail("generation.top_k", "found ", g.top_k, ", expected >= 0 (0 = off)");
  if (!(g.top_p > 0 && g.top_p <= 1)) c.source.fail("generation.top_p", "found ", g.top_p, ", expected a value in (0, 1]");
  if (!(g.min_p >= 0 && g.min_p < 1)) c.source.fail("generation.min_p", "found ", g.min_p, ", expected a value in [0, 1)");

  const ExtractSettings& e = c.extract;
  if (job == JobKind::extract || job == JobKind::cache_activations) {
    if (e.layers.empty()) c.source.fail("extract.layers", "missing; job ", name(job), " needs layers such as [0, 12]");
  }
  check_layers(c, "extract.layers", e.layers);
  if (e.dtype == DType::bfloat16) c.source.fail("extract.dtype", "found \"bfloat16\", expected float32 or float16 (HDF5 has no bfloat16)");
  if (e.positions.empty()) c.source.fail("extract.positions", "empty; expected positions such as [last]");
  require_positive(c, "extract.batch_size", e.batch_size);

  const SweepSettings& s = c.sweep;
  check_layers(c, "sweep.layers", s.layers);
  if (job == JobKind::sweep && s.layers.empty() && e.layers.empty()) {
    c.source.fail("sweep.layers", "missing; job sweep needs sweep.layers or extract.layers");
  }
  if (s.folds < 2) c.source.fail("sweep.folds", "found ", s.folds, ", expected >= 2");
  if (s.label != "correct" && s.label != "data") {
    c.source.fail("sweep.label", "found '", s.label, "', expected correct or data");
  }
  if (s.l2 < 0) c.source.fail("sweep.l2", "found ", s.l2, ", expected >= 0");

  const SpecSettings& sp = c.spec;
  if (job == JobKind::spec_thinking) {
    check_model(c, "draft_model", c.draft_model);
    require_text(c, "spec.problems", sp.problems, "a JSONL problems file");
    if (sp.modes.empty()) c.source.fail("spec.modes", "empty; expected some of large, small, spec");
    for (size_t i = 0; i < sp.modes.size(); ++i) {
      const auto& m = sp.modes[i];
      if (m != "large" && m != "small" && m != "spec") {
        c.source.fail("spec.modes[" + std::to_string(i) + "]", "found \"", m, "\", expected large, small or spec");
      }
    }
    if (sp.trigger_tokens.empty()) c.source.fail("spec.trigger_tokens", "empty; expected at least one trigger such as \"\\n\\n\"");
  }
  require_positive(c, "spec.max_target_tokens", sp.max_target_tokens);
  require_positive(c, "spec.max_tokens", sp.max_tokens);
  if (sp.num_runs < 1) c.source.fail("spec.num_runs", "found ", sp.num_runs, ", expected >= 1");

  for (Role role : kAllRoles) check_role(c, role, c.layout.role(role));
  if (c.layout.gpus_per_node < 0) c.source.fail("layout.gpus_per_node", "found ", c.layout.gpus_per_node, ", expected >= 0 (0 = ask the device)");
  if (job == JobKind::spec_thinking && c.layout.any_role()) {
    if (!c.layout.role(Role::target_shard).enabled) c.source.fail("layout.roles.target_shard", "missing; job spec_thinking needs target_shard and draft roles");
    if (!c.layout.role(Role::draft).enabled) c.source.fail("layout.roles.draft", "missing; job spec_thinking needs target_shard and draft roles");
  }

  require_positive(c, "coordinator.chunk_size", c.coordinator.chunk_size);
  require_positive(c, "coordinator.progress_interval_s", c.coordinator.progress_interval_s);

  const SelftestSettings& t = c.selftest;
  if (t.num_chunks < 0) c.source.fail("selftest.num_chunks", "found ", t.num_chunks, ", expected >= 0");
  require_positive(c, "selftest.items_per_chunk", t.items_per_chunk);
  if (t.delay_ms < 0) c.source.fail("selftest.delay_ms", "found ", t.delay_ms, ", expected >= 0");
  if (t.fail_mode != "exception" && t.fail_mode != "exit" && t.fail_mode != "segfault") {
    c.source.fail("selftest.fail_mode", "found \"", t.fail_mode, "\", expected exception, exit or segfault");
  }
}

}  // namespace gpujob::config
