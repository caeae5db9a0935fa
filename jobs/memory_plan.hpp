// The memory section of `gpujob plan --gpu-memory-gib G`: per rank of one node, what its role's
// memory fraction gives, what the model's weights take, and for a generator how many KV-cache
// slots fit (the same plan the generator makes at run time once it sees the GPU).
#pragma once

#include <string>

#include "gpujob/cluster/layout.hpp"
#include "gpujob/config/run_config.hpp"

namespace gpujob::jobs {

// Reads the model's config.json (never its weights). Throws a one-line error when model.path has
// none. Lines starting with "warning: " flag a rank whose weights do not fit or whose
// generation.batch_size does not fit.
std::string memory_plan_text(const config::RunConfig& config, const cluster::Layout& layout, double gpu_memory_gib);

}  // namespace gpujob::jobs
