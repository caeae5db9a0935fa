// `gpujob plan CONFIG --np N [--nodes K] [--gpus-per-node G] [--gpu-memory-gib M]`: the role table,
// and with M the memory each rank's role gets (jobs/memory_plan.hpp), without MPI or GPUs.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace gpujob::jobs {

void add_plan_command(CLI::App& app);

// The plan text for a config file (what the command prints); throws gpujob::Error with the same
// one-line messages as a real launch (wrong -np, GPU ids beyond --gpus-per-node).
// gpu_memory_gib > 0 adds the memory section.
std::string plan_text(const std::string& config_path, int np, int nodes, int gpus_per_node,
                      double gpu_memory_gib = 0);

}  // namespace gpujob::jobs
