#include "gpujob/analysis/sweep_summary.hpp"

#include "gpujob/util/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

namespace gpujob::analysis {

namespace {

std::string fixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return buf;
}

std::string pad(const std::string& s, size_t width, bool right) {
  if (s.size() >= width) return s;
  return right ? std::string(width - s.size(), ' ') + s : s + std::string(width - s.size(), ' ');
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Positions in the order a reader expects, unknown ones after.
std::vector<std::string> positions_of(const std::vector<SweepCell>& cells) {
  static const std::vector<std::string> kOrder = {"last", "first", "middle", "mean", "all"};
  std::set<std::string> present;
  for (const auto& c : cells) present.insert(c.position);
  std::vector<std::string> out;
  for (const auto& p : kOrder) {
    if (present.erase(p)) out.push_back(p);
  }
  out.insert(out.end(), present.begin(), present.end());
  return out;
}

std::vector<int> layers_of(const std::vector<SweepCell>& cells) {
  std::set<int> layers;
  for (const auto& c : cells) layers.insert(c.layer);
  return {layers.begin(), layers.end()};
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  GPUJOB_CHECK(out.good(), path, ": cannot open for writing");
  out << text;
  out.close();
  GPUJOB_CHECK(out.good(), path, ": write failed");
}

}  // namespace

std::string sweep_summary_text(const std::vector<SweepCell>& cells, const std::string& title,
                               const std::vector<std::string>& notes) {
  GPUJOB_CHECK(!cells.empty(), "sweep summary: no cells");
  const auto positions = positions_of(cells);
  std::map<std::pair<int, std::string>, const SweepCell*> at;
  for (const auto& c : cells) at[{c.layer, c.position}] = &c;
  std::string out = "Probe sweep: " + title + "\n";
  for (const auto& n : notes) out += n + "\n";
  out += "Cells: held-out AUROC, mean +- sample std over the folds (chance = 0.5).\n\n";
  const size_t width = 18;
  out += pad("layer", 6, true);
  for (const auto& p : positions) out += pad(p, width, true);
  out += "\n";
  const SweepCell* best = nullptr;
  for (int layer : layers_of(cells)) {
    out += pad(std::to_string(layer), 6, true);
    for (const auto& p : positions) {
      const auto it = at.find({layer, p});
      if (it == at.end()) {
        out += pad("-", width, true);
        continue;
      }
      const auto& r = it->second->result;
      out += pad(fixed(r.mean_auroc, 3) + " +- " + fixed(r.std_auroc, 3) + (r.converged ? "" : "*"), width, true);
      if (!best || r.mean_auroc > best->result.mean_auroc) best = it->second;
    }
    out += "\n";
  }
  const auto& r0 = cells.front().result;
  out += "\nBest: layer " + std::to_string(best->layer) + ", position " + best->position + ": AUROC " +
         fixed(best->result.mean_auroc, 3) + " +- " + fixed(best->result.std_auroc, 3) + "\n";
  out += "Samples: " + std::to_string(r0.samples) + " labeled (" + std::to_string(r0.positives) + " with label 1), " +
         std::to_string(r0.folds) + " folds.\n";
  const bool any_unconverged = std::any_of(cells.begin(), cells.end(), [](const SweepCell& c) { return !c.result.converged; });
  if (any_unconverged) out += "* a fold's logistic regression did not reach its gradient tolerance.\n";
  return out;
}

std::string sweep_summary_csv(const std::vector<SweepCell>& cells) {
  std::string out = "layer,position,auroc_mean,auroc_std,folds,samples,positives,converged,fold_auroc\n";
  for (const auto& c : cells) {
    const auto& r = c.result;
    std::string folds;
    for (size_t i = 0; i < r.fold_auroc.size(); ++i) folds += (i ? ";" : "") + fixed(r.fold_auroc[i], 6);
    out += std::to_string(c.layer) + "," + c.position + "," + fixed(r.mean_auroc, 6) + "," + fixed(r.std_auroc, 6) + "," +
           std::to_string(r.folds) + "," + std::to_string(r.samples) + "," + std::to_string(r.positives) + "," +
           (r.converged ? "true" : "false") + "," + folds + "\n";
  }
  return out;
}

std::string sweep_plot_svg(const std::vector<SweepCell>& cells, const std::string& title) {
  GPUJOB_CHECK(!cells.empty(), "sweep plot: no cells");
  const double width = 760, height = 460, left = 70, right = 150, top = 50, bottom = 60;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const auto layers = layers_of(cells);
  const auto positions = positions_of(cells);
  double low = 0.5;
  for (const auto& c : cells) low = std::min(low, c.result.mean_auroc - c.result.std_auroc);
  low = std::max(0.0, std::floor(low * 10) / 10);
  const double high = 1.0;
  const int first = layers.front(), last = layers.back();
  // Layers sit inside the frame (5% margin on each side), not on its edges.
  const auto x_of = [&](int layer) {
    return last == first ? left + plot_w / 2
                         : left + plot_w * (0.05 + 0.9 * (layer - first) / static_cast<double>(last - first));
  };
  const auto y_of = [&](double v) { return top + plot_h * (high - std::clamp(v, low, high)) / (high - low); };
  static const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fixed(width, 0) + "\" height=\"" + fixed(height, 0) +
       "\" viewBox=\"0 0 " + fixed(width, 0) + " " + fixed(height, 0) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + fixed(width / 2, 1) + "\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">" +
       xml_escape("Probe AUROC by layer: " + title) + "</text>\n";
  // Grid and y ticks every 0.1.
  for (int i = static_cast<int>(std::lround(low * 10)); i <= 10; ++i) {
    const double v = i / 10.0, y = y_of(v);
    s += "<line x1=\"" + fixed(left, 1) + "\" x2=\"" + fixed(left + plot_w, 1) + "\" y1=\"" + fixed(y, 1) + "\" y2=\"" +
         fixed(y, 1) + "\" stroke=\"#e0e0e0\"/>\n";
    s += "<text x=\"" + fixed(left - 8, 1) + "\" y=\"" + fixed(y + 4, 1) + "\" text-anchor=\"end\">" + fixed(v, 1) + "</text>\n";
  }
  if (low < 0.5) {
    const double y = y_of(0.5);
    s += "<line x1=\"" + fixed(left, 1) + "\" x2=\"" + fixed(left + plot_w, 1) + "\" y1=\"" + fixed(y, 1) + "\" y2=\"" +
         fixed(y, 1) + "\" stroke=\"#888\" stroke-dasharray=\"5,4\"/>\n";
    s += "<text x=\"" + fixed(left + plot_w - 4, 1) + "\" y=\"" + fixed(y - 5, 1) + "\" text-anchor=\"end\" fill=\"#666\">chance</text>\n";
  }
  for (int layer : layers) {
    const double x = x_of(layer);
    s += "<line x1=\"" + fixed(x, 1) + "\" x2=\"" + fixed(x, 1) + "\" y1=\"" + fixed(top + plot_h, 1) + "\" y2=\"" +
         fixed(top + plot_h + 5, 1) + "\" stroke=\"black\"/>\n";
    s += "<text x=\"" + fixed(x, 1) + "\" y=\"" + fixed(top + plot_h + 20, 1) + "\" text-anchor=\"middle\">" +
         std::to_string(layer) + "</text>\n";
  }
  s += "<rect x=\"" + fixed(left, 1) + "\" y=\"" + fixed(top, 1) + "\" width=\"" + fixed(plot_w, 1) + "\" height=\"" +
       fixed(plot_h, 1) + "\" fill=\"none\" stroke=\"black\"/>\n";
  s += "<text x=\"" + fixed(left + plot_w / 2, 1) + "\" y=\"" + fixed(height - 15, 1) + "\" text-anchor=\"middle\">layer</text>\n";
  s += "<text transform=\"translate(20," + fixed(top + plot_h / 2, 1) +
       ") rotate(-90)\" text-anchor=\"middle\">AUROC (mean &#177; std over folds)</text>\n";

  for (size_t pi = 0; pi < positions.size(); ++pi) {
    const std::string color = kColors[pi % (sizeof kColors / sizeof kColors[0])];
    std::vector<const SweepCell*> line;
    for (const auto& c : cells) {
      if (c.position == positions[pi]) line.push_back(&c);
    }
    std::sort(line.begin(), line.end(), [](const SweepCell* a, const SweepCell* b) { return a->layer < b->layer; });
    std::string points;
    const double shift = 4.0 * (static_cast<double>(pi) - 0.5 * static_cast<double>(positions.size() - 1));
    for (const auto* c : line) points += fixed(x_of(c->layer) + shift, 1) + "," + fixed(y_of(c->result.mean_auroc), 1) + " ";
    s += "<g stroke=\"" + color + "\" fill=\"" + color + "\">\n";
    s += "<polyline points=\"" + points + "\" fill=\"none\" stroke-width=\"2\"/>\n";
    // Error bars of different positions at one layer are shifted apart so they stay readable.
    const double dodge = 4.0 * (static_cast<double>(pi) - 0.5 * static_cast<double>(positions.size() - 1));
    for (const auto* c : line) {
      const double x = x_of(c->layer) + dodge, y = y_of(c->result.mean_auroc);
      const double y_lo = y_of(c->result.mean_auroc - c->result.std_auroc), y_hi = y_of(c->result.mean_auroc + c->result.std_auroc);
      s += "<line x1=\"" + fixed(x, 1) + "\" x2=\"" + fixed(x, 1) + "\" y1=\"" + fixed(y_lo, 1) + "\" y2=\"" + fixed(y_hi, 1) + "\"/>\n";
      s += "<line x1=\"" + fixed(x - 4, 1) + "\" x2=\"" + fixed(x + 4, 1) + "\" y1=\"" + fixed(y_lo, 1) + "\" y2=\"" + fixed(y_lo, 1) + "\"/>\n";
      s += "<line x1=\"" + fixed(x - 4, 1) + "\" x2=\"" + fixed(x + 4, 1) + "\" y1=\"" + fixed(y_hi, 1) + "\" y2=\"" + fixed(y_hi, 1) + "\"/>\n";
      s += "<circle cx=\"" + fixed(x, 1) + "\" cy=\"" + fixed(y, 1) + "\" r=\"3.5\"><title>layer " + std::to_string(c->layer) +
           ", " + xml_escape(c->position) + ": " + fixed(c->result.mean_auroc, 3) + " &#177; " + fixed(c->result.std_auroc, 3) +
           "</title></circle>\n";
    }
    s += "</g>\n";
    const double ly = top + 10 + 22 * static_cast<double>(pi), lx = left + plot_w + 18;
    s += "<line x1=\"" + fixed(lx, 1) + "\" x2=\"" + fixed(lx + 24, 1) + "\" y1=\"" + fixed(ly, 1) + "\" y2=\"" + fixed(ly, 1) +
         "\" stroke=\"" + color + "\" stroke-width=\"2\"/>\n";
    s += "<text x=\"" + fixed(lx + 30, 1) + "\" y=\"" + fixed(ly + 4, 1) + "\">" + xml_escape(positions[pi]) + "</text>\n";
  }
  s += "</svg>\n";
  return s;
}

SweepSummaryFiles write_sweep_summary(const std::string& dir, const std::vector<SweepCell>& cells, const std::string& title,
                                      const std::vector<std::string>& notes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  GPUJOB_CHECK(!ec, dir, ": cannot create the results folder: ", ec.message());
  SweepSummaryFiles files{dir + "/sweep_summary.txt", dir + "/sweep_summary.csv", dir + "/sweep_auroc.svg"};
  write_file(files.text, sweep_summary_text(cells, title, notes));
  write_file(files.csv, sweep_summary_csv(cells));
  write_file(files.svg, sweep_plot_svg(cells, title));
  return files;
}

}  // namespace gpujob::analysis
