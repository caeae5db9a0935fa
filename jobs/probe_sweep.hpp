// Probe sweep: a cross-validated linear probe per (layer, position) of an activation file,
// summarized as a table, a CSV and an AUROC-by-layer plot in the run's results folder.
#pragma once

#include <string>

#include "gpujob/analysis/sweep_summary.hpp"
#include "gpujob/config/run_config.hpp"

namespace gpujob::jobs {

// Layers and positions default to the extract section's. Reads /samples/label (1 correct,
// 0 wrong, -1 no answer: left out). Serial; run on one rank after the file is complete.
analysis::SweepSummaryFiles run_probe_sweep(const config::RunConfig& config, const std::string& h5_path);

// The sweep's (layer, position) cells: sweep.layers/positions, else extract's.
std::vector<int> sweep_layers(const config::RunConfig& config);
std::vector<config::TokenPosition> sweep_positions(const config::RunConfig& config);

}  // namespace gpujob::jobs
