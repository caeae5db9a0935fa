// The gpujob binary end to end through mpirun: selftest results, a failing worker, a rank that
// dies, wrong -np, a world of 1, config errors printed once, `gpujob plan`, and stop + resume.
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "catch.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string source_dir() { return env_or("GPUJOB_SOURCE_DIR", "."); }
std::string binary() { return env_or("GPUJOB_BINARY", "gpujob"); }

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int count_lines_starting(const std::string& text, const std::string& prefix) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.rfind(prefix, 0) == 0;
  return n;
}

// A command started in its own process group, in a fresh work directory (results/ lands there).
class Launch {
 public:
  Launch(const std::string& name, const std::string& command) : dir_(fs::temp_directory_path() / ("gpujob-" + name)) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    start(command);
  }
  void start(const std::string& command) {
    started_ = Clock::now();
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      if (chdir(dir_.c_str()) != 0) _exit(127);
      const std::string full = "exec " + command + " >stdout.txt 2>stderr.txt";
      execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  // Exit status, or -1 after `timeout_s` (the process group is then killed).
  int wait(double timeout_s = 120) {
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (seconds() > timeout_s) {
        kill(-pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    elapsed_ = seconds();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - started_).count(); }
  double elapsed() const { return elapsed_; }
  pid_t pid() const { return pid_; }
  const fs::path& dir() const { return dir_; }
  std::string out() const { return slurp(dir_ / "stdout.txt"); }
  std::string err() const { return slurp(dir_ / "stderr.txt"); }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  Clock::time_point started_;
  double elapsed_ = 0;
};

std::string mpirun(int np) { return "mpirun -np " + std::to_string(np) + " --oversubscribe "; }
std::string selftest_config() { return " " + source_dir() + "/configs/selftest.yaml"; }

json read_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in.good());
  return json::parse(in);
}

// Every chunk of both stages exactly once, with the right value.
void check_complete(const json& j, int chunks, int items, bool two_stages) {
  CHECK(j.at("complete").get<bool>());
  std::map<std::pair<int, int64_t>, int64_t> seen;
  for (const auto& c : j.at("chunks")) {
    CHECK(seen.emplace(std::make_pair(c.at("queue").get<int>(), c.at("id").get<int64_t>()), c.at("value").get<int64_t>()).second);
  }
  CHECK(seen.size() == static_cast<size_t>(two_stages ? 2 * chunks : chunks));
  for (int64_t id = 0; id < chunks; ++id) {
    int64_t sum = 0;
    for (int k = 0; k < items; ++k) sum += (id * items + k) * (id * items + k);
    CHECK(seen[{0, id}] == sum);
    if (two_stages) CHECK(seen[{1, id}] == 2 * sum);
  }
}

}  // namespace

TEST_CASE("selftest under mpirun: every chunk once, the slow rank does fewer, two stages") {
  Launch run("selftest-uneven", mpirun(3) + binary() + selftest_config() +
                                    " --set selftest.num_chunks=30 --set selftest.delay_ms_by_rank=[5,150,5]"
                                    " --set selftest.two_stages=true --set run_name=uneven");
  REQUIRE(run.wait() == 0);
  const json j = read_json(run.dir() / "results/uneven/selftest.json");
  check_complete(j, 30, 4, true);
  std::map<int, int> per_rank;
  for (const auto& c : j.at("chunks")) ++per_rank[c.at("rank").get<int>()];
  INFO("chunks per rank: 0=" << per_rank[0] << " 1=" << per_rank[1] << " 2=" << per_rank[2]);
  CHECK(per_rank[1] * 3 < per_rank[0]);
  CHECK(per_rank[1] * 3 < per_rank[2]);
  CHECK((run.out() + run.err()).find("queue square_sum: 30/30 chunks done") != std::string::npos);
}

TEST_CASE("a worker that throws stops the job within seconds with one line naming rank, host and chunk") {
  Launch run("selftest-fail", mpirun(3) + binary() + selftest_config() +
                                  " --set selftest.num_chunks=200 --set selftest.fail_rank=2 --set selftest.fail_chunk=5");
  const int status = run.wait(60);
  CHECK(status != 0);
  CHECK(status != -1);
  CHECK(run.elapsed() < 20);
  const std::string err = run.err();
  INFO(err);
  CHECK(count_lines_starting(err, "gpujob: error: ") == 1);
  CHECK(err.find("gpujob: error: rank 2 (") != std::string::npos);
  CHECK(err.find(" of queue square_sum: selftest: injected failure") != std::string::npos);
}

TEST_CASE("a rank that crashes names itself, its signal and its stack; nothing hangs") {
  Launch run("selftest-segfault", mpirun(3) + binary() + selftest_config() +
                                      " --set selftest.num_chunks=200 --set selftest.fail_rank=1 --set selftest.fail_chunk=2"
                                      " --set selftest.fail_mode=segfault");
  const int status = run.wait(60);
  CHECK(status != 0);
  CHECK(status != -1);
  CHECK(run.elapsed() < 30);
  const std::string out = run.out() + run.err();
  INFO(out);
  CHECK(out.find("gpujob rank 1: fatal signal SIGSEGV (Segmentation fault)\n") != std::string::npos);
  CHECK(out.find("  native stack:\n") != std::string::npos);
}

TEST_CASE("a rank that dies stops the job; nothing hangs") {
  Launch run("selftest-die", mpirun(3) + binary() + selftest_config() +
                                 " --set selftest.num_chunks=200 --set selftest.fail_rank=1 --set selftest.fail_chunk=2"
                                 " --set selftest.fail_mode=exit");
  const int status = run.wait(60);
  CHECK(status != 0);
  CHECK(status != -1);
  CHECK(run.elapsed() < 30);
}

TEST_CASE("launch mistakes are one line, printed once, exit status 2") {
  const std::string split8 = " " + source_dir() + "/configs/split8.yaml --set job=selftest --set model.device=cpu";
  {
    Launch run("np-wrong", mpirun(3) + binary() + split8);
    CHECK(run.wait(60) == 2);
    const std::string err = run.err();
    INFO(err);
    CHECK(count_lines_starting(err, "gpujob: error: ") == 1);
    CHECK(err.find("has 3 ranks but " + source_dir() +
                   "/configs/split8.yaml's layout needs 8 ranks per node (generator 4 + extractor 4); use -np 8 per "
                   "node (-np 8 for 1 node)") != std::string::npos);
  }
  {
    Launch run("np-one", binary() + split8);
    CHECK(run.wait(60) == 2);
    CHECK(run.err().find("the layout needs 8 ranks per node (generator 4 + extractor 4) but gpujob runs as a single "
                         "process") != std::string::npos);
  }
  {
    Launch run("bad-key", mpirun(3) + binary() + selftest_config() + " --set selftest.delay=3");
    CHECK(run.wait(60) == 2);
    const std::string err = run.err();
    INFO(err);
    CHECK(count_lines_starting(err, "gpujob: error: ") == 1);
    CHECK(err.find("gpujob: error: --set selftest.delay: unknown key 'delay' (did you mean 'delay_ms'?)") !=
          std::string::npos);
  }
  {
    Launch run("gpu-id", mpirun(2) + binary() + " " + source_dir() +
                             "/configs/two-gpu-80g.yaml --set job=selftest --set model.device=cpu "
                             "--set layout.gpus_per_node=1");
    CHECK(run.wait(60) == 2);
    const std::string err = run.err();
    INFO(err);
    CHECK(count_lines_starting(err, "gpujob: error: ") == 1);
    CHECK(err.find("/configs/two-gpu-80g.yaml:30: layout.roles.extractor.gpus[0]: GPU 1 does not exist (1 visible on node ") !=
          std::string::npos);
  }
}

TEST_CASE("gpujob plan prints the role table without MPI") {
  Launch run("plan", binary() + " plan " + source_dir() + "/configs/split8.yaml --np 16 --nodes 2");
  REQUIRE(run.wait(60) == 0);
  const std::string out = run.out();
  CHECK(out.find("8 ranks per node (generator 4 + extractor 4) x 2 nodes = 16 ranks") != std::string::npos);
  CHECK(out.find("   15     1      7    7  extractor") != std::string::npos);
  Launch bad("plan-bad", binary() + " plan " + source_dir() + "/configs/split8.yaml --np 8 --gpus-per-node 6");
  CHECK(bad.wait(60) == 1);
  CHECK(bad.err() == "gpujob: error: " + source_dir() +
                         "/configs/split8.yaml:31: layout.roles.extractor.gpus[2]: GPU 6 does not exist (6 visible on "
                         "node node0)\n");
}

TEST_CASE("SIGUSR1 as slurm/sweep.sh sends it: in-flight chunks finish, progress is recorded, exit 75, a rerun completes") {
  const std::string command = mpirun(3) + binary() + selftest_config() +
                              " --set selftest.num_chunks=60 --set selftest.delay_ms=100 --set selftest.two_stages=true"
                              " --set run_name=stop";
  Launch run("selftest-stop", command);
  const fs::path progress = run.dir() / "results/stop/selftest_progress.jsonl";
  // Wait until some results are recorded, then send Slurm's warning signal.
  while (run.seconds() < 60 && count_lines_starting(slurp(progress), "{") < 10) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const int lines_before = count_lines_starting(slurp(progress), "{");
  const double signalled_at = run.seconds();
  // As slurm/sweep.sh: to mpirun (sh execs it, so the pid is mpirun's) and to the ranks it
  // started, since not every Open MPI build's mpirun forwards USR1.
  kill(run.pid(), SIGUSR1);
  CHECK(std::system(("pkill -USR1 -P " + std::to_string(run.pid())).c_str()) == 0);
  const int status = run.wait(60);
  INFO("SIGUSR1 sent after " << signalled_at << " s with " << lines_before << " progress lines; job ended after "
                             << run.elapsed() << " s");
  INFO(run.out());
  INFO(run.err());
  CHECK(status == 75);
  const json stopped = read_json(run.dir() / "results/stop/selftest_stopped.json");
  CHECK(stopped.at("stopped").get<bool>());
  const int recorded = count_lines_starting(slurp(progress), "{");
  CHECK(recorded >= 10);
  CHECK(recorded < 120);
  CHECK_FALSE(fs::exists(run.dir() / "results/stop/selftest.json"));
  CHECK((run.out() + run.err()).find("stopped before the end (exit status 75)") != std::string::npos);

  // The rerun does only what is missing.
  run.start(command);
  REQUIRE(run.wait(120) == 0);
  check_complete(read_json(run.dir() / "results/stop/selftest.json"), 60, 4, true);
  CHECK(count_lines_starting(slurp(progress), "{") == 120);
  CHECK((run.out() + run.err()).find("resuming: " + std::to_string(recorded) + " chunk result(s)") != std::string::npos);
}

TEST_CASE("SIGTERM to one rank stops the whole run cleanly") {
  Launch run("selftest-term", mpirun(3) + binary() + selftest_config() +
                                  " --set selftest.num_chunks=100 --set selftest.delay_ms=50 --set run_name=term");
  const fs::path progress = run.dir() / "results/term/selftest_progress.jsonl";
  while (run.seconds() < 60 && count_lines_starting(slurp(progress), "{") < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // The ranks are children of mpirun: signal one of them (not rank 0's process necessarily).
  const std::string pids = [] {
    FILE* p = popen("pgrep -f 'configs/selftest.yaml --set selftest.num_chunks=100' | head -20", "r");
    std::string out;
    char buf[256];
    while (p && fgets(buf, sizeof buf, p)) out += buf;
    if (p) pclose(p);
    return out;
  }();
  std::istringstream in(pids);
  std::vector<pid_t> ranks;
  for (std::string line; std::getline(in, line);) {
    const pid_t pid = std::stoi(line);
    // Only gpujob processes whose parent is not the shell (those are mpirun's children).
    if (slurp("/proc/" + line + "/comm").find("gpujob") != std::string::npos) ranks.push_back(pid);
  }
  REQUIRE_FALSE(ranks.empty());
  kill(ranks.back(), SIGTERM);
  const int status = run.wait(60);
  INFO(run.err());
  CHECK(status == 75);
  CHECK(fs::exists(run.dir() / "results/term/selftest_stopped.json"));
}
