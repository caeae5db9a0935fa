#include "jobs/probe_sweep.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "gpujob/analysis/probe.hpp"
#include "gpujob/io/activation_reader.hpp"
#include "gpujob/util/error.hpp"
#include "gpujob/util/log.hpp"

namespace gpujob::jobs {

std::vector<int> sweep_layers(const config::RunConfig& config) {
  return config.sweep.layers.empty() ? config.extract.layers : config.sweep.layers;
}

std::vector<config::TokenPosition> sweep_positions(const config::RunConfig& config) {
  auto positions = config.sweep.positions.empty() ? config.extract.positions : config.sweep.positions;
  // `all` has no single row per sample: it is extracted but not probed.
  positions.erase(std::remove(positions.begin(), positions.end(), config::TokenPosition::all),
                  positions.end());
  return positions;
}

analysis::SweepSummaryFiles run_probe_sweep(const config::RunConfig& config, const std::string& h5_path) {
  const auto info = io::inspect_activation_file(h5_path);
  GPUJOB_CHECK(info.complete, h5_path, ": the activation file is not complete; rerun the job to finish it");
  const auto labels = io::read_int64_dataset(h5_path, "/samples/label");
  const auto positions = sweep_positions(config);
  if (positions.empty()) config.source.fail("sweep.positions", "no position to probe (`all` is not probed)");

  analysis::ProbeOptions options;
  options.folds = config.sweep.folds;
  options.seed = static_cast<uint64_t>(config.sweep.seed);
  options.regression.l2 = config.sweep.l2;

  std::vector<analysis::SweepCell> cells;
  for (int layer : sweep_layers(config)) {
    for (auto position : positions) {
      const std::string pos = config::name(position);
      const auto matrix = io::read_activations(h5_path, layer, pos);
      const auto labeled = analysis::labeled_features(matrix.values.data(), matrix.rows, matrix.cols, labels);
      analysis::SweepCell cell;
      cell.layer = layer;
      cell.position = pos;
      cell.result = analysis::cross_validate_probe(labeled.features, labeled.labels, options);
      spdlog::info("probe layer {} {}: AUROC {:.3f} +- {:.3f} ({} samples, {} positive)", layer, pos,
                   cell.result.mean_auroc, cell.result.std_auroc, cell.result.samples,
                   cell.result.positives);
      cells.push_back(std::move(cell));
    }
  }
  auto attr = [&](const char* key) {
    auto it = info.string_attributes.find(key);
    return it == info.string_attributes.end() ? std::string() : it->second;
  };
  const std::string title = attr("model") + ", " + (attr("template").empty() ? "no template" : attr("template")) +
                            ", n=" + std::to_string(info.num_samples);
  const std::vector<std::string> notes = {
      "probe: logistic regression, L2 " + std::to_string(config.sweep.l2) + ", " +
      std::to_string(config.sweep.folds) + "-fold stratified cross-validation, seed " +
      std::to_string(config.sweep.seed),
      "activations: " + h5_path};
  return analysis::write_sweep_summary(config.run_dir(), cells, title, notes);
}

}  // namespace gpujob::jobs
