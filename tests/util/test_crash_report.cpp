// A crashing process names its rank and signal on stderr and still dies of that signal.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <string>

#include "gpujob/util/crash_report.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

namespace {

struct ChildOutcome {
  int term_signal = 0;   // 0 when the child exited normally
  std::string stderr_text;
};

// Runs `body` in a child process whose stderr is captured.
template <typename Body>
ChildOutcome run_child(Body body) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    body();
    _exit(0);
  }
  close(fds[1]);
  ChildOutcome out;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) out.stderr_text.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) out.term_signal = WTERMSIG(status);
  return out;
}

}  // namespace

TEST_CASE("a fatal signal is reported with the rank and the stack, then ends the process by that signal") {
  const ChildOutcome out = run_child([] {
    gpujob::install_crash_report(5);
    std::raise(SIGSEGV);
  });
  CHECK(out.term_signal == SIGSEGV);
  CHECK(out.stderr_text.find("gpujob rank 5: fatal signal SIGSEGV (Segmentation fault)\n") == 0);
  CHECK(out.stderr_text.size() > 80);  // at least a few frames follow
}

TEST_CASE("a call through a stale function pointer names the caller from the return address on the stack") {
  const ChildOutcome out = run_child([] {
    gpujob::install_crash_report(-1);
    // An address no library maps: what calling a function of an unloaded library does.
    volatile uintptr_t stale = 0x10;
    reinterpret_cast<void (*)()>(stale)();
  });
  CHECK(out.term_signal == SIGSEGV);
  INFO(out.stderr_text);
  CHECK(out.stderr_text.find("fault address 0x10\n") != std::string::npos);
  CHECK(out.stderr_text.find("instruction 0x10 (unmapped)") != std::string::npos);
  CHECK(out.stderr_text.find("outside all loaded code") != std::string::npos);
  // The caller is this test program: its return address is on the stack.
  const auto listed = out.stderr_text.find("code addresses on the stack");
  REQUIRE(listed != std::string::npos);
  CHECK(out.stderr_text.find("test_crash_report+0x", listed) != std::string::npos);
}

TEST_CASE("a single-process run has no rank in the report, and an abort is reported too") {
  const ChildOutcome out = run_child([] {
    gpujob::install_crash_report(2);
    gpujob::install_crash_report(-1);  // the later call wins
    std::abort();
  });
  CHECK(out.term_signal == SIGABRT);
  CHECK(out.stderr_text.find("gpujob: fatal signal SIGABRT (Aborted)") == 0);
}

TEST_CASE("a process that does not crash prints nothing") {
  const ChildOutcome out = run_child([] { gpujob::install_crash_report(0); });
  CHECK(out.term_signal == 0);
  CHECK(out.stderr_text.empty());
}
