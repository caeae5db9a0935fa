// Speculative Thinking benchmark records: statistics, answer check, file names and contents, table.
#include "jobs/spec_thinking_benchmark.hpp"

#include <filesystem>
#include <fstream>
#include <regex>

#include "catch.hpp"

using namespace gpujob::jobs;

namespace {

SpecRunRecord record(const std::string& id, double latency, int64_t tokens, int64_t large, bool correct) {
  SpecRunRecord r;
  r.problem_id = id;
  r.latency_s = latency;
  r.tokens = tokens;
  r.throughput = static_cast<double>(tokens) / latency;
  r.large_tokens = large;
  r.small_tokens = tokens - large;
  r.large_model_ratio = static_cast<double>(large) / static_cast<double>(tokens);
  r.correct = correct;
  return r;
}

}  // namespace

TEST_CASE("means and medians of odd and even counts") {
  CHECK(mean({1.0, 2.0, 6.0}) == Approx(3.0));
  CHECK(median({6.0, 1.0, 2.0}) == Approx(2.0));
  CHECK(median({4.0, 1.0, 3.0, 2.0}) == Approx(2.5));
  CHECK(mean({}) == 0.0);
}

TEST_CASE("the last boxed answer is read with nested braces and compared as a number") {
  CHECK(last_boxed_answer("first \\boxed{12}, then \\boxed{ $040$ }") == "040");
  CHECK(last_boxed_answer("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}");
  CHECK(last_boxed_answer("no answer") == "");
  CHECK(last_boxed_answer("cut off \\boxed{4") == "");
  CHECK(answers_match("040", "40"));
  CHECK(answers_match("0", "000"));
  CHECK_FALSE(answers_match("41", "40"));
  CHECK_FALSE(answers_match("", ""));
  CHECK(answers_match("\\frac{1}{2}", "\\frac{1}{2}"));
}

TEST_CASE("benchmark files carry per-run numbers, means, medians and the speedup") {
  SpecModeSummary large{SpecMode::large, {record("p1", 10.0, 100, 100, true), record("p2", 30.0, 300, 300, false)}};
  SpecModeSummary spec{SpecMode::spec, {record("p1", 4.0, 100, 25, true), record("p2", 6.0, 300, 75, true)}};
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "gpujob_spec_benchmark_test";
  std::filesystem::remove_all(dir);
  const auto files = write_benchmark_files(dir.string(), "20260102_030405", {large, spec}, {{"max_tokens", 400}});
  REQUIRE(files.size() == 3);
  CHECK(files[0] == (dir / "large_model_benchmark_20260102_030405.json").string());
  CHECK(files[1] == (dir / "speculative_thinking_benchmark_20260102_030405.json").string());
  CHECK(files[2] == (dir / "speedup_benchmark_20260102_030405.json").string());

  const nlohmann::json s = nlohmann::json::parse(std::ifstream(files[1]));
  CHECK(s["mode"] == "spec");
  CHECK(s["settings"]["max_tokens"] == 400);
  REQUIRE(s["runs"].size() == 2);
  CHECK(s["runs"][1]["large_model_tokens"] == 75);
  CHECK(s["runs"][1]["throughput_tok_s"].get<double>() == Approx(50.0));
  CHECK(s["summary"]["mean_latency_s"].get<double>() == Approx(5.0));
  CHECK(s["summary"]["median_tokens"].get<double>() == Approx(200.0));
  CHECK(s["summary"]["mean_large_model_ratio"].get<double>() == Approx(0.25));
  CHECK(s["summary"]["accuracy"].get<double>() == Approx(1.0));

  const nlohmann::json up = nlohmann::json::parse(std::ifstream(files[2]));
  CHECK(up["latency_speedup_mean"].get<double>() == Approx(20.0 / 5.0));
  CHECK(up["latency_speedup_median"].get<double>() == Approx(20.0 / 5.0));
  CHECK(up["throughput_speedup_mean"].get<double>() == Approx(37.5 / 10.0));
  CHECK(up["large_model"]["accuracy"].get<double>() == Approx(0.5));

  const std::string table = format_benchmark_table({large, spec});
  CHECK(table.find("speedup (mean latency large / spec): 4.00x") != std::string::npos);
  CHECK(std::regex_search(table, std::regex("spec +2 +5\\.000")));
  CHECK(std::regex_match(benchmark_stamp(), std::regex("\\d{8}_\\d{6}")));
  CHECK_THROWS_WITH(parse_spec_mode("medium"), Catch::Contains("spec.modes"));
}
