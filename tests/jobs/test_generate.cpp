// job: generate on the built-in demo model: the output contract, identical files across batch sizes,
// stop strings, and clear errors.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpujob/config/load_config.hpp"
#include "gpujob/text/tokenizer.hpp"
#include "gpujob/util/error.hpp"
#include "jobs/demo_model.hpp"
#include "jobs/generate.hpp"
// Last: libtorch's logging headers define a CHECK macro of their own, and Catch's must win.
#include "catch.hpp"

namespace fs = std::filesystem;
using namespace gpujob;

namespace {

struct Fixture {
  fs::path dir;
  fs::path model;
  fs::path data;

  Fixture() {
    dir = fs::temp_directory_path() / ("gpujob_test_generate_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    model = dir / "model";
    jobs::DemoModelOptions demo;
    demo.directory = model.string();
    jobs::write_demo_model(demo);
    data = dir / "data.jsonl";
    std::ofstream out(data);
    const char* texts[] = {"The capital of France is", "One, two, three,", "Hello", "Question: what is 2+2?",
                           "a b c d e f g h i j k l m n o p", "Once upon a time", "x", "The answer is (B)",
                           "Why is the sky blue?", "Count: 1 2 3"};
    for (int i = 0; i < 10; ++i) out << nlohmann::json{{"id", "row-" + std::to_string(i)}, {"text", texts[i]}}.dump() << "\n";
  }
  ~Fixture() { fs::remove_all(dir); }

  config::RunConfig config(const std::string& generation_yaml) const {
    std::ostringstream yaml;
    yaml << "job: generate\nrun_name: test\n"
         << "model: {path: " << model.string() << ", dtype: float32, device: cpu}\n"
         << "data: {path: " << data.string() << "}\n"
         << "generation: " << generation_yaml << "\n";
    return config::parse_run_config(yaml.str(), "test.yaml");
  }
};

std::string read_all(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The gpujob executable ctest passes in GPUJOB_BINARY, with mpirun allowed to run as root; empty
// when the test runs outside ctest.
std::string gpujob_binary() {
  const char* binary = std::getenv("GPUJOB_BINARY");
  if (!binary || !*binary) return "";
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  return binary;
}

// A generate job file in `dir` (sampled, chunks of 2 prompts, results under dir/results).
fs::path write_generate_yaml(const fs::path& dir, const fs::path& model, const fs::path& data,
                             const std::string& run_name, const fs::path& output) {
  const fs::path yaml = dir / (run_name + ".yaml");
  std::ofstream out(yaml);
  out << "job: generate\nrun_name: " << run_name << "\noutput_dir: " << (dir / "results").string() << "\n"
      << "model: {path: " << model.string() << ", dtype: float32, device: cpu}\n"
      << "data: {path: " << data.string() << "}\n"
      << "generation: {max_new_tokens: 10, temperature: 0.8, top_k: 40, seed: 3, batch_size: 3, "
         "max_model_len: 64, output: " << output.string() << "}\n"
      << "coordinator: {chunk_size: 2}\n";
  return yaml;
}

// Runs a shell command with its output in dir/<log>.out; requires status 0 and returns the output.
std::string run_logged(const fs::path& dir, const std::string& command, const std::string& log) {
  const fs::path out = dir / (log + ".out");
  const std::string full = command + " >" + out.string() + " 2>&1";
  const int status = std::system(full.c_str());
  const std::string text = read_all(out);
  INFO(full << "\n" << text);
  REQUIRE(status == 0);
  return text;
}

std::vector<nlohmann::json> read_lines(const fs::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

}  // namespace

TEST_CASE("job generate writes one line per prompt in data order, the same for every batch size", "[generate]") {
  Fixture f;
  const std::string settings = "{max_new_tokens: 12, temperature: 0.9, top_p: 0.95, seed: 7, max_model_len: 64, ";
  std::vector<std::string> files;
  for (int batch : {1, 3, 16}) {
    fs::path out = f.dir / ("out_" + std::to_string(batch) + ".jsonl");
    jobs::run_generate_single_process(
        f.config(settings + "batch_size: " + std::to_string(batch) + ", output: " + out.string() + "}"));
    files.push_back(read_all(out));
  }
  CHECK(files[0] == files[1]);
  CHECK(files[0] == files[2]);

  std::vector<nlohmann::json> lines = read_lines(f.dir / "out_1.jsonl");
  REQUIRE(lines.size() == 10);
  auto tokenizer = text::load_tokenizer(f.model.string());
  std::set<std::string> distinct;
  for (size_t i = 0; i < lines.size(); ++i) {
    const nlohmann::json& l = lines[i];
    INFO(l.dump());
    CHECK(l.at("id") == "row-" + std::to_string(i));
    std::vector<int32_t> ids = l.at("completion_ids").get<std::vector<int32_t>>();
    const std::string reason = l.at("finish_reason");
    CHECK((reason == "stop" || reason == "length"));
    CHECK(ids.size() <= 12);
    if (reason == "length") CHECK(ids.size() == 12);
    CHECK(l.at("completion") == tokenizer->decode(ids, /*skip_special_tokens=*/true));
    distinct.insert(l.at("completion").get<std::string>());
  }
  CHECK(distinct.size() > 5);  // sampled completions of different prompts differ

  // Another seed changes the completions.
  fs::path other = f.dir / "other_seed.jsonl";
  jobs::run_generate_single_process(
      f.config("{max_new_tokens: 12, temperature: 0.9, top_p: 0.95, seed: 8, max_model_len: 64, batch_size: 4, output: " +
               other.string() + "}"));
  CHECK(read_all(other) != files[0]);
}

TEST_CASE("job generate: stop strings cut the completion, and errors name the setting", "[generate]") {
  Fixture f;
  fs::path base = f.dir / "greedy.jsonl";
  jobs::run_generate_single_process(
      f.config("{max_new_tokens: 16, batch_size: 4, max_model_len: 64, output: " + base.string() + "}"));
  std::vector<nlohmann::json> lines = read_lines(base);
  REQUIRE(lines.size() == 10);
  // A stop string taken from the middle of the first completion long enough to hold one.
  std::string stop;
  for (const auto& l : lines) {
    std::string text = l.at("completion");
    if (text.size() >= 8) {
      stop = text.substr(4, 3);
      break;
    }
  }
  REQUIRE(!stop.empty());
  fs::path cut = f.dir / "stopped.jsonl";
  config::RunConfig with_stop =
      f.config("{max_new_tokens: 16, batch_size: 2, max_model_len: 64, output: " + cut.string() + "}");
  with_stop.generation.stop = {stop};
  jobs::run_generate_single_process(with_stop);
  std::vector<nlohmann::json> stopped = read_lines(cut);
  REQUIRE(stopped.size() == 10);
  int matched = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string full = lines[i].at("completion");
    size_t at = full.find(stop);
    INFO("stop \"" << stop << "\" full \"" << full << "\"");
    if (at == std::string::npos) {
      CHECK(stopped[i] == lines[i]);
      continue;
    }
    ++matched;
    CHECK(stopped[i].at("finish_reason") == "stop");
    CHECK(stopped[i].at("completion") == full.substr(0, at));
    auto ids = stopped[i].at("completion_ids").get<std::vector<int64_t>>();
    auto full_ids = lines[i].at("completion_ids").get<std::vector<int64_t>>();
    CHECK(ids.size() <= full_ids.size());
    CHECK(std::equal(ids.begin(), ids.end(), full_ids.begin()));
  }
  CHECK(matched >= 1);

  fs::path never = f.dir / "never.jsonl";
  CHECK_THROWS_WITH(
      jobs::run_generate_single_process(
          f.config("{max_new_tokens: 16, max_model_len: 8, output: " + never.string() + "}")),
      Catch::Contains("generation.max_model_len") && Catch::Contains("sample \"row-"));
  CHECK_FALSE(fs::exists(never));
}

TEST_CASE("job generate under mpirun writes the same file as one rank", "[generate][mpi]") {
  const std::string binary = gpujob_binary();
  if (binary.empty()) {
    WARN("GPUJOB_BINARY is not set (run through ctest): skipped");
    return;
  }
  Fixture f;
  const fs::path yaml = write_generate_yaml(f.dir, f.model, f.data, "mpi", f.dir / "mpi.jsonl");
  run_logged(f.dir, "mpirun -np 3 --oversubscribe " + binary + " " + yaml.string(), "mpi");
  // Its own cache, or it would only read back what the mpirun run stored.
  run_logged(f.dir,
             binary + " " + yaml.string() + " --set generation.batch_size=5 --set coordinator.chunk_size=10" +
                 " --set generation.output=" + (f.dir / "one.jsonl").string() +
                 " --set generation.cache_dir=" + (f.dir / "cache-one").string(),
             "one");
  const std::string mpi = read_all(f.dir / "mpi.jsonl");
  CHECK(read_lines(f.dir / "mpi.jsonl").size() == 10);
  CHECK(mpi == read_all(f.dir / "one.jsonl"));
  // And the same as the library path in this process.
  config::RunConfig single = config::load_run_config(yaml.string());
  single.generation.output = (f.dir / "library.jsonl").string();
  jobs::run_generate_single_process(single);
  CHECK(mpi == read_all(f.dir / "library.jsonl"));
}

TEST_CASE("job generate keeps completions in the cache: a rerun generates only what is missing", "[generate][mpi]") {
  const std::string binary = gpujob_binary();
  if (binary.empty()) {
    WARN("GPUJOB_BINARY is not set (run through ctest): skipped");
    return;
  }
  Fixture f;
  const fs::path output = f.dir / "out.jsonl";
  const fs::path yaml = write_generate_yaml(f.dir, f.model, f.data, "cached", output);
  auto run = [&](const std::string& log) {
    return run_logged(f.dir, "mpirun -np 2 --oversubscribe " + binary + " " + yaml.string(), log);
  };
  const std::string first_log = run("first");
  CHECK_THAT(first_log, Catch::Contains("0 of 10 samples stored, 5 chunks to generate"));
  const std::string first = read_all(output);
  REQUIRE(read_lines(output).size() == 10);

  // The same command again: nothing to generate, the model is never loaded, the same file.
  fs::remove(output);
  const std::string second_log = run("second");
  CHECK_THAT(second_log, Catch::Contains("10 of 10 samples stored, 0 chunks to generate"));
  CHECK_THAT(second_log, !Catch::Contains("loaded "));
  CHECK(read_all(output) == first);

  // As after a crash that kept 3 of the 5 chunks: only the 2 missing ones are generated.
  fs::path completions;
  for (const auto& e : fs::recursive_directory_iterator(f.dir / "results" / "cache")) {
    if (e.path().filename() == "completions.jsonl") completions = e.path();
  }
  REQUIRE(!completions.empty());
  std::vector<std::string> lines;
  {
    std::ifstream in(completions);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  REQUIRE(lines.size() == 10);
  {
    std::ofstream out(completions, std::ios::trunc);
    for (size_t i = 0; i < 6; ++i) out << lines[i] << "\n";
  }
  fs::remove(output);
  const std::string third_log = run("third");
  CHECK_THAT(third_log, Catch::Contains("6 of 10 samples stored, 2 chunks to generate"));
  CHECK(read_all(output) == first);
}
