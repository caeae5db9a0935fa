// Sweep outputs: sweep_summary.txt (a table to read), sweep_summary.csv, and an SVG plot of
// AUROC by layer with one line per position and error bars.
#pragma once

#include "gpujob/analysis/probe_result.hpp"

#include <string>
#include <vector>

namespace gpujob::analysis {

struct SweepSummaryFiles {
  std::string text;  // <dir>/sweep_summary.txt
  std::string csv;   // <dir>/sweep_summary.csv
  std::string svg;   // <dir>/sweep_auroc.svg
};

// `title` heads the table and the plot (e.g. "gemma-3-12b-it, 50-50, n=200"); `notes` are extra
// lines under the title (probe settings). Creates `dir` when missing.
SweepSummaryFiles write_sweep_summary(const std::string& dir, const std::vector<SweepCell>& cells, const std::string& title,
                                      const std::vector<std::string>& notes = {});

// The pieces, for callers that place them elsewhere.
std::string sweep_summary_text(const std::vector<SweepCell>& cells, const std::string& title,
                               const std::vector<std::string>& notes);
std::string sweep_summary_csv(const std::vector<SweepCell>& cells);
std::string sweep_plot_svg(const std::vector<SweepCell>& cells, const std::string& title);

}  // namespace gpujob::analysis
