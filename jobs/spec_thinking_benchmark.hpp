// Speculative Thinking benchmark records: per-run numbers, per-mode means and medians, JSON files and the table.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace gpujob::jobs {

// A mode of the benchmark: one model alone, or the two together.
enum class SpecMode { large, small, spec };
const char* name(SpecMode mode);
SpecMode parse_spec_mode(const std::string& text);  // throws naming spec.modes

// One run of one problem in one mode.
struct SpecRunRecord {
  std::string problem_id;
  int run = 0;                     // 0-based run index for this problem
  double latency_s = 0.0;          // wall time of the run, prompt prefill included
  int64_t tokens = 0;              // generated tokens (the prompt is not counted)
  double throughput = 0.0;         // tokens / latency_s
  double large_model_ratio = 0.0;  // output tokens written by the large model / tokens
  int64_t large_tokens = 0;
  int64_t small_tokens = 0;
  int64_t inserted_tokens = 0;     // help words
  int64_t discarded_tokens = 0;    // drafted or rewritten, then thrown away
  int64_t drafts = 0;
  int64_t recaps = 0;
  bool eos = false;                // ended at EOS, else at the length limit
  std::string expected_answer;
  std::string answer;              // last \boxed{...} of the output ("" when none)
  bool correct = false;
};

struct SpecModeSummary {
  SpecMode mode = SpecMode::large;
  std::vector<SpecRunRecord> runs;
};

// The last \boxed{...} (braces matched) of a completion, unwrapped of spaces and `$`; "" when none.
std::string last_boxed_answer(const std::string& text);
// Integer answers compare as numbers ("040" == "40"); anything else as trimmed text.
bool answers_match(const std::string& found, const std::string& expected);

double mean(const std::vector<double>& values);
double median(std::vector<double> values);

// {mode, config, runs: [...], summary: {mean_latency_s, median_latency_s, mean_tokens, ...}}.
nlohmann::json summary_json(const SpecModeSummary& summary, const nlohmann::json& settings);
// large vs spec: mean and median latency ratio (large / spec) and throughput ratio (spec / large).
nlohmann::json speedup_json(const SpecModeSummary& large, const SpecModeSummary& spec, const nlohmann::json& settings);

// Writes {large_model|small_model|speculative_thinking}_benchmark_<stamp>.json per mode and
// speedup_benchmark_<stamp>.json when both large and spec ran. Returns the paths written.
std::vector<std::string> write_benchmark_files(const std::string& directory, const std::string& stamp,
                                               const std::vector<SpecModeSummary>& summaries,
                                               const nlohmann::json& settings);

// "YYYYmmdd_HHMMSS" of the local time now.
std::string benchmark_stamp();

// The table printed at the end: one row per mode (means and medians), then the speedup.
std::string format_benchmark_table(const std::vector<SpecModeSummary>& summaries);

}  // namespace gpujob::jobs
