
#include "gpujob/analysis/sweep_summary.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::analysis;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}
std::vector<SweepCell> cells() {
  std::vector<SweepCell> out;
  for (int layer : {10, 12, 13, 14, 16})
    for (const char* pos : {"last", "mean"}) {
      SweepCell c;
      c.layer = layer;
      c.position = pos;
      c.result.fold_auroc = {0.6 + layer / 100.0, 0.7 + layer / 100.0};
      c.result.mean_auroc = 0.65 + layer / 100.0 + (std::string(pos) == "mean" ? 0.05 : 0.0);
      c.result.std_auroc = 0.05;
      c.result.folds = 2;
      c.result.samples = 200;
      c.result.positives = 97;
      out.push_back(c);
    }
  return out;
}
}  // namespace

TEST_CASE("sweep summary: table, CSV and SVG plot") {
  const auto dir = (std::filesystem::temp_directory_path() / "gpujob-sweep-test").string();
  std::filesystem::remove_all(dir);
  const auto files = write_sweep_summary(dir + "/results/run", cells(), "tiny <model> & 50-50", {"probe: L2 = 1, 2 folds"});
  const auto text = slurp(files.text);
  CHECK(text.find("Probe sweep: tiny <model> & 50-50") == 0);
  CHECK(text.find("probe: L2 = 1, 2 folds") != std::string::npos);
  CHECK(text.find(" layer              last              mean\n") != std::string::npos);
  CHECK(text.find("\n    13    0.780 +- 0.050    0.830 +- 0.050\n") != std::string::npos);
  CHECK(text.find("Best: layer 16, position mean: AUROC 0.860 +- 0.050") != std::string::npos);

  const auto csv = slurp(files.csv);
  CHECK(count(csv, "\n") == 11);
  CHECK(csv.find("layer,position,auroc_mean,auroc_std,folds,samples,positives,converged,fold_auroc\n") == 0);
  CHECK(csv.find("13,mean,0.830000,0.050000,2,200,97,true,0.730000;0.830000\n") != std::string::npos);

  const auto svg = slurp(files.svg);
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(count(svg, "<polyline") == 2);
  CHECK(count(svg, "<circle") == 10);
  CHECK(svg.find("tiny &lt;model&gt; &amp; 50-50") != std::string::npos);
  CHECK(svg.find("</svg>") != std::string::npos);
  // Well-formed XML, when a parser is at hand.
  if (std::system("python3 -c 'import xml.dom.minidom' > /dev/null 2>&1") == 0) {
    CHECK(std::system(("python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' " + files.svg).c_str()) == 0);
  }
  // Rendered by a real SVG renderer, when one is installed.
  if (std::system("rsvg-convert --version > /dev/null 2>&1") == 0) {
    CHECK(std::system(("rsvg-convert -o " + dir + "/plot.png " + files.svg).c_str()) == 0);
    CHECK(std::filesystem::file_size(dir + "/plot.png") > 1000);
  }
  if (!std::getenv("GPUJOB_KEEP_TEST_OUTPUT")) std::filesystem::remove_all(dir);
}
