// A failing draft rank ends a spec_thinking job at once: `mpirun -np 3 gpujob` with target shards
// already waiting for commands exits non-zero within seconds, with the draft's error on one line.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "catch.hpp"

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

struct RunOutcome {
  int exit_status = -1;
  double seconds = 0.0;
  std::string output;
};

RunOutcome run_command(const std::string& command) {
  RunOutcome out;
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) out.output += buffer;
  const int status = pclose(pipe);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

}  // namespace

TEST_CASE("a draft rank that fails stops the spec_thinking job with its message, without a hang") {
  const std::string source = env_or_empty("GPUJOB_SOURCE_DIR");
  const std::string binary = env_or_empty("GPUJOB_BINARY");
  REQUIRE(!source.empty());
  INFO("GPUJOB_BINARY=" << binary << " (build the gpujob target first)");
  REQUIRE(std::filesystem::exists(binary));

  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "gpujob_spec_draft_failure";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // The target (2 shards) loads fine and waits for the driver's first command; the draft's folder
  // is a golden checkpoint without tokenizer files, so the draft rank fails while loading.
  const std::string model = source + "/tests/data/models/qwen3_new";
  const std::string config = (dir / "spec.yaml").string();
  std::ofstream(config) << "job: spec_thinking\n"
                        << "output_dir: " << (dir / "results").string() << "\n"
                        << "model: {path: " << model << ", dtype: float32, device: cpu}\n"
                        << "draft_model: {path: " << model << ", dtype: float32, device: cpu}\n"
                        << "generation: {max_model_len: 256}\n"
                        << "spec: {problems: " << source << "/configs/problems/aime_style.jsonl, max_tokens: 16,"
                        << " num_problems: 1, num_runs: 1, output_dir: " << (dir / "bench").string() << "}\n"
                        << "layout:\n  roles:\n"
                        << "    target_shard: {gpus: [0, 1], tensor_parallel: 2}\n"
                        << "    draft: {gpus: [2], tensor_parallel: 1}\n";

  const RunOutcome r = run_command("cd " + dir.string() + " && timeout 120 mpirun -np 3 --oversubscribe " + binary +
                                   " " + config);
  INFO(r.output);
  CHECK(r.exit_status != 0);
  CHECK(r.exit_status != 124);  // not ended by the timeout: the job stopped by itself
  CHECK(r.seconds < 60.0);
  CHECK_THAT(r.output, Catch::Contains("tokenizer"));
  CHECK_FALSE(std::filesystem::exists(dir / "bench"));  // no results from a failed run
}
