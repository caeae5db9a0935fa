// `gpujob plan CONFIG --np N [--nodes K] [--gpus-per-node G]`: the role table, without MPI or GPUs.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace gpujob::jobs {

void add_plan_command(CLI::App& app);

// The plan text for a config file (what the command prints); throws gpujob::Error with the same
// one-line messages as a real launch (wrong -np, GPU ids beyond --gpus-per-node).
std::string plan_text(const std::string& config_path, int np, int nodes, int gpus_per_node);

}  // namespace gpujob::jobs
