// Speculative Thinking benchmark records: statistics, answer check, JSON files and the final table.
#include "jobs/spec_thinking_benchmark.hpp"

#include "gpujob/util/error.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <numeric>

namespace gpujob::jobs {

const char* name(SpecMode mode) {
  switch (mode) {
    case SpecMode::large: return "large";
    case SpecMode::small: return "small";
    case SpecMode::spec: return "spec";
  }
  return "?";
}

SpecMode parse_spec_mode(const std::string& text) {
  if (text == "large") return SpecMode::large;
  if (text == "small") return SpecMode::small;
  if (text == "spec") return SpecMode::spec;
  fail("spec.modes: expected large, small or spec, found \"", text, "\"");
}

namespace {

const char* file_prefix(SpecMode mode) {
  switch (mode) {
    case SpecMode::large: return "large_model";
    case SpecMode::small: return "small_model";
    case SpecMode::spec: return "speculative_thinking";
  }
  return "?";
}

std::string trim(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::vector<double> column(const SpecModeSummary& s, double SpecRunRecord::*field) {
  std::vector<double> out;
  for (const SpecRunRecord& r : s.runs) out.push_back(r.*field);
  return out;
}

std::vector<double> tokens_column(const SpecModeSummary& s) {
  std::vector<double> out;
  for (const SpecRunRecord& r : s.runs) out.push_back(static_cast<double>(r.tokens));
  return out;
}

double accuracy(const SpecModeSummary& s) {
  if (s.runs.empty()) return 0.0;
  const auto correct = std::count_if(s.runs.begin(), s.runs.end(), [](const SpecRunRecord& r) { return r.correct; });
  return static_cast<double>(correct) / static_cast<double>(s.runs.size());
}

}  // namespace

std::string last_boxed_answer(const std::string& text) {
  const std::string marker = "\\boxed{";
  const size_t at = text.rfind(marker);
  if (at == std::string::npos) return "";
  int depth = 1;
  size_t i = at + marker.size();
  std::string inner;
  for (; i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) break;
    inner += text[i];
  }
  if (depth != 0) return "";  // unterminated: the output was cut
  std::string out;
  for (char c : inner) {
    if (c != '$' && !std::isspace(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

bool answers_match(const std::string& found, const std::string& expected) {
  const std::string a = trim(found);
  const std::string b = trim(expected);
  auto is_integer = [](const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
  };
  if (is_integer(a) && is_integer(b)) {
    auto strip = [](const std::string& s) {
      const size_t nz = s.find_first_not_of('0');
      return nz == std::string::npos ? std::string("0") : s.substr(nz);
    };
    return strip(a) == strip(b);
  }
  return !a.empty() && a == b;
}

double mean(const std::vector<double>& values) {
  if (values.empty()) return 0.0;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

nlohmann::json summary_json(const SpecModeSummary& s, const nlohmann::json& settings) {
  nlohmann::json runs = nlohmann::json::array();
  for (const SpecRunRecord& r : s.runs) {
    runs.push_back({{"problem_id", r.problem_id},
                    {"run", r.run},
                    {"latency_s", r.latency_s},
                    {"tokens", r.tokens},
                    {"throughput_tok_s", r.throughput},
                    {"large_model_ratio", r.large_model_ratio},
                    {"large_model_tokens", r.large_tokens},
                    {"small_model_tokens", r.small_tokens},
                    {"inserted_tokens", r.inserted_tokens},
                    {"discarded_tokens", r.discarded_tokens},
                    {"drafts", r.drafts},
                    {"recaps", r.recaps},
                    {"finish_reason", r.eos ? "stop" : "length"},
                    {"expected_answer", r.expected_answer},
                    {"answer", r.answer},
                    {"correct", r.correct}});
  }
  const std::vector<double> latency = column(s, &SpecRunRecord::latency_s);
  const std::vector<double> tokens = tokens_column(s);
  const std::vector<double> throughput = column(s, &SpecRunRecord::throughput);
  const std::vector<double> ratio = column(s, &SpecRunRecord::large_model_ratio);
  nlohmann::json summary = {{"num_runs", s.runs.size()},
                            {"mean_latency_s", mean(latency)},
                            {"median_latency_s", median(latency)},
                            {"mean_tokens", mean(tokens)},
                            {"median_tokens", median(tokens)},
                            {"mean_throughput_tok_s", mean(throughput)},
                            {"median_throughput_tok_s", median(throughput)},
                            {"mean_large_model_ratio", mean(ratio)},
                            {"median_large_model_ratio", median(ratio)},
                            {"accuracy", accuracy(s)}};
  return {{"mode", name(s.mode)}, {"settings", settings}, {"runs", runs}, {"summary", summary}};
}

nlohmann::json speedup_json(const SpecModeSummary& large, const SpecModeSummary& spec, const nlohmann::json& settings) {
  auto ratio = [](double num, double den) { return den > 0 ? num / den : 0.0; };
  const std::vector<double> large_latency = column(large, &SpecRunRecord::latency_s);
  const std::vector<double> spec_latency = column(spec, &SpecRunRecord::latency_s);
  const std::vector<double> large_tp = column(large, &SpecRunRecord::throughput);
  const std::vector<double> spec_tp = column(spec, &SpecRunRecord::throughput);
  return {{"settings", settings},
          {"large_model", {{"mean_latency_s", mean(large_latency)}, {"median_latency_s", median(large_latency)},
                           {"mean_throughput_tok_s", mean(large_tp)}, {"accuracy", accuracy(large)}}},
          {"speculative_thinking",
           {{"mean_latency_s", mean(spec_latency)}, {"median_latency_s", median(spec_latency)},
            {"mean_throughput_tok_s", mean(spec_tp)}, {"accuracy", accuracy(spec)},
            {"mean_large_model_ratio", mean(column(spec, &SpecRunRecord::large_model_ratio))}}},
          {"latency_speedup_mean", ratio(mean(large_latency), mean(spec_latency))},
          {"latency_speedup_median", ratio(median(large_latency), median(spec_latency))},
          {"throughput_speedup_mean", ratio(mean(spec_tp), mean(large_tp))}};
}

std::vector<std::string> write_benchmark_files(const std::string& directory, const std::string& stamp,
                                               const std::vector<SpecModeSummary>& summaries,
                                               const nlohmann::json& settings) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  GPUJOB_CHECK(!ec, directory, ": cannot create the benchmark directory: ", ec.message());
  std::vector<std::string> written;
  auto write = [&](const std::string& prefix, const nlohmann::json& doc) {
    const std::string path = directory + "/" + prefix + "_benchmark_" + stamp + ".json";
    std::ofstream out(path);
    GPUJOB_CHECK(out, path, ": cannot open for writing");
    out << doc.dump(2) << "\n";
    GPUJOB_CHECK(out.good(), path, ": write failed");
    written.push_back(path);
  };
  const SpecModeSummary* large = nullptr;
  const SpecModeSummary* spec = nullptr;
  for (const SpecModeSummary& s : summaries) {
    write(file_prefix(s.mode), summary_json(s, settings));
    if (s.mode == SpecMode::large) large = &s;
    if (s.mode == SpecMode::spec) spec = &s;
  }
  if (large != nullptr && spec != nullptr) write("speedup", speedup_json(*large, *spec, settings));
  return written;
}

std::string benchmark_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y%m%d_%H%M%S", &local);
  return buffer;
}

std::string format_benchmark_table(const std::vector<SpecModeSummary>& summaries) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof(line), "%-6s %5s %12s %12s %10s %12s %12s %9s %8s\n", "mode", "runs", "latency_s",
                "median_lat", "tokens", "tok/s", "median_tok/s", "large_%", "acc_%");
  out += line;
  const SpecModeSummary* large = nullptr;
  const SpecModeSummary* spec = nullptr;
  for (const SpecModeSummary& s : summaries) {
    const std::vector<double> latency = column(s, &SpecRunRecord::latency_s);
    const std::vector<double> throughput = column(s, &SpecRunRecord::throughput);
    std::snprintf(line, sizeof(line), "%-6s %5zu %12.3f %12.3f %10.1f %12.2f %12.2f %9.1f %8.1f\n", name(s.mode),
                  s.runs.size(), mean(latency), median(latency), mean(tokens_column(s)), mean(throughput),
                  median(throughput), 100.0 * mean(column(s, &SpecRunRecord::large_model_ratio)), 100.0 * accuracy(s));
    out += line;
    if (s.mode == SpecMode::large) large = &s;
    if (s.mode == SpecMode::spec) spec = &s;
  }
  if (large != nullptr && spec != nullptr) {
    const double l = mean(column(*large, &SpecRunRecord::latency_s));
    const double p = mean(column(*spec, &SpecRunRecord::latency_s));
    std::snprintf(line, sizeof(line), "speedup (mean latency large / spec): %.2fx\n", p > 0 ? l / p : 0.0);
    out += line;
  }
  return out;
}

}  // namespace gpujob::jobs
