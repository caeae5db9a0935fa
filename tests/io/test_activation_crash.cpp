// A writer killed with SIGKILL mid-run leaves a file that opens, and a resume completes it.
// Runs as a plain (singleton MPI) test: the writer is a child process started before MPI_Init.

#include "activation_fixture.hpp"
#include "gpujob/io/jsonl.hpp"

#include <csignal>
#include <cstring>
#include <filesystem>
#include <sys/wait.h>
#include <unistd.h>
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

extern char** environ;

using namespace gpujob::io;

namespace {

// The environment minus the launcher's variables: the child must start as its own singleton job.
std::vector<std::string> child_environment(const std::string& path) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string var = *e;
    const bool launcher = var.rfind("PMIX_", 0) == 0 || var.rfind("OMPI_COMM_WORLD", 0) == 0 ||
                          var.rfind("OMPI_MCA_orte", 0) == 0 || var.rfind("OMPI_MCA_ess", 0) == 0;
    if (!launcher) env.push_back(var);
  }
  env.push_back("GPUJOB_CRASH_TEST_FILE=" + path);
  return env;
}

}  // namespace

// Started by the test below, never on its own (hidden tag): writes chunks 0 and 1, half of
// chunk 2 without recording it, then dies as `kill -9` would kill it.
TEST_CASE("crash child", "[.crash_child]") {
  const char* path = std::getenv("GPUJOB_CRASH_TEST_FILE");
  REQUIRE(path);
  ensure_mpi();
  const auto spec = small_spec(true);
  auto file = ActivationFile::create(path, spec, MPI_COMM_SELF);
  write_chunk(file, spec, 0);
  write_chunk(file, spec, 1);
  write_chunk(file, spec, 2, false);
  std::raise(SIGKILL);
}

// Started by the second test below: records every chunk, then rewrites the rows of the last one
// (same values) until it is killed from outside, in the middle of a write.
TEST_CASE("busy child", "[.busy_child]") {
  const char* path = std::getenv("GPUJOB_CRASH_TEST_FILE");
  REQUIRE(path);
  ensure_mpi();
  const auto spec = small_spec(true);
  auto file = ActivationFile::create(path, spec, MPI_COMM_SELF);
  for (int64_t c = 0; c < kNumChunks; ++c) write_chunk(file, spec, c);
  for (;;) write_chunk(file, spec, 3, false);
}

namespace {

// Runs this executable with only the hidden test `tag`, writing `path`.
pid_t start_child(const std::string& tag, const std::string& path) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const pid_t child = ::fork();
  if (child == 0) {
    auto env = child_environment(path);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string tag_arg = tag;
    char* argv[] = {const_cast<char*>(self.c_str()), tag_arg.data(), nullptr};
    ::execve(self.c_str(), argv, envp.data());
    std::_Exit(127);
  }
  return child;
}

}  // namespace

TEST_CASE("after SIGKILL the file opens, keeps its recorded chunks, and resumes to the full result") {
  char pattern[] = "/tmp/gpujob-crash-XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  const std::string path = dir + "/run.h5";
  const pid_t child = start_child("[.crash_child]", path);
  REQUIRE(child > 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);

  // The file opens with the standard tools right away, without any repair.
  CHECK(std::system(("h5dump -H " + path + " > /dev/null").c_str()) == 0);
  const auto spec = small_spec(true);
  CHECK(count_mismatches(path, spec, {0, 1}) == 0);
  CHECK_FALSE(inspect_activation_file(path).complete);

  ensure_mpi();
  {
    auto file = ActivationFile::create_or_resume(path, spec, MPI_COMM_WORLD);
    CHECK(file.resumed());
    CHECK(file.completed_chunks() == std::set<int64_t>{0, 1});
    for (int64_t c = 0; c < kNumChunks; ++c) {
      if (!file.completed_chunks().count(c)) write_chunk(file, spec, c);
    }
    file.finalize();
  }
  CHECK(count_mismatches(path, spec, {0, 1, 2, 3}) == 0);
  CHECK(inspect_activation_file(path).complete);
  CHECK(read_sample_ids(path) == spec.sample_ids);
  CHECK(std::system(("h5dump " + path + " > /dev/null").c_str()) == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a writer killed from outside in the middle of writing rows leaves a consistent file") {
  char pattern[] = "/tmp/gpujob-crash-XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  const std::string path = dir + "/busy.h5";
  const pid_t child = start_child("[.busy_child]", path);
  REQUIRE(child > 0);
  // Wait until every chunk is recorded, let it rewrite for a moment, then kill -9.
  for (int i = 0; i < 600 && gpujob::io::read_jsonl_if_exists(progress_path(path)).size() < kNumChunks; ++i) ::usleep(50000);
  ::usleep(100000);
  ::kill(child, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));

  CHECK(std::system(("h5dump -H " + path + " > /dev/null").c_str()) == 0);
  const auto spec = small_spec(true);
  ensure_mpi();
  {
    auto file = ActivationFile::open_for_resume(path, spec, MPI_COMM_WORLD);
    CHECK(file.completed_chunks() == std::set<int64_t>{0, 1, 2, 3});
    CHECK_FALSE(file.complete());
    file.finalize();
  }
  CHECK(count_mismatches(path, spec, {0, 1, 2, 3}) == 0);
  std::filesystem::remove_all(dir);
}
