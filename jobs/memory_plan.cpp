#include "jobs/memory_plan.hpp"

#include <filesystem>

#include "gpujob/model/kv_cache_plan.hpp"
#include "gpujob/model/model_config.hpp"
#include "gpujob/util/error.hpp"
#include "jobs/model_setup.hpp"

namespace gpujob::jobs {

using model::format_gib;
std::string memory_plan_text(const config::RunConfig& config, const cluster::Layout& layout, double gpu_memory_gib) {
  GPUJOB_CHECK(gpu_memory_gib > 0, "--gpu-memory-gib ", gpu_memory_gib, ": expected a positive size");
  const std::string config_json = config.model.path + "/config.json";
  GPUJOB_CHECK(std::filesystem::exists(config_json), "model.path ", config.model.path,
               " has no config.json: --gpu-memory-gib needs it (the weights are not read)");
  const model::ModelConfig model = model::load_model_config(config_json);
  const at::ScalarType dtype = to_scalar_type(config.model.dtype);
  const int64_t weights = model::decoder_weight_bytes(model, dtype);
  const double gpu_bytes = gpu_memory_gib * model::kBytesPerGiB;
  const model::KvCacheShape shape{model.num_layers, model.n_kv_heads, model.head_dim};
  const auto& g = config.generation;

  std::string out = concat("memory on ", gpu_memory_gib, " GiB GPUs, ", model.architecture, " in ",
                           config::name(config.model.dtype), ": weights ", format_gib(weights), " per rank\n");
  std::string warnings;
  for (const cluster::RankPlacement& p : layout.table(1)) {
    for (const cluster::RoleAssignment& a : p.roles) {
      const double budget = a.memory_fraction * gpu_bytes;
      std::string line = concat("  rank ", p.rank, " ", config::name(a.role), " on GPU ", a.gpu, ": ",
                                format_gib(budget), " (fraction ", a.memory_fraction, ")");
      const double left = budget - static_cast<double>(weights);
      const std::string who = concat("rank ", p.rank, " ", config::name(a.role), " on GPU ", a.gpu);
      if (a.role != config::Role::generator && a.role != config::Role::extractor) {
        out += line + ": not estimated (its models are in the spec section)\n";
        continue;
      }
      if (left <= 0) {
        out += line + ": the weights do not fit\n";
        warnings += concat("warning: ", who, ": the weights (", format_gib(weights), ") do not fit in ",
                           format_gib(budget), "; raise memory_fraction or use a smaller dtype\n");
        continue;
      }
      if (a.role == config::Role::extractor) {
        // Sequences are at most max_model_len tokens (prompt + completion).
        const int64_t seq = g.max_model_len;
        const int64_t fits = model::extraction_batch_that_fits(static_cast<int64_t>(left), model, dtype, seq,
                                                               static_cast<int64_t>(config.extract.layers.size()),
                                                               std::max(1, config.extract.batch_size));
        out += concat(line, ": ", format_gib(left), " left for activations; batches of ", fits, " sequences of ", seq,
                      " tokens fit (extract.batch_size ", config.extract.batch_size, ")\n");
        if (fits < config.extract.batch_size) {
          warnings += concat("warning: ", who, ": extract.batch_size ", config.extract.batch_size, " may not fit at ",
                             seq, " tokens (about ", fits, " do); the run halves a batch that runs out of memory\n");
        }
        continue;
      }
      // As at run time: slots of max_model_len positions (prompt + completion), at most batch_size.
      const int64_t max_len = g.max_model_len;
      const int64_t longest_prompt = std::max<int64_t>(1, max_len - g.max_new_tokens);
      try {
        const model::KvCachePlan plan =
            model::plan_generation_memory(static_cast<int64_t>(left), model, shape, dtype, max_len, g.batch_size,
                                          g.max_prefill_tokens, longest_prompt);
        out += concat(line, ": KV cache ", plan.n_slots, " slots x ", plan.max_len, " positions ",
                      format_gib(plan.bytes), " + forward workspace ", format_gib(plan.workspace_bytes), "\n");
        if (plan.n_slots < g.batch_size) {
          warnings += concat("warning: ", who, ": generation.batch_size ", g.batch_size, " does not fit; ",
                             plan.n_slots, " slots of ", max_len, " positions do\n");
        }
      } catch (const Error& e) {
        out += line + ": not even one KV-cache slot fits\n";
        warnings += concat("warning: ", who, ": ", e.what(), "\n");
      }
    }
  }
  return out + warnings;
}

}  // namespace gpujob::jobs
