#include "gpujob/util/crash_report.hpp"

#include <execinfo.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace gpujob {
namespace {

// Written before the crash; the handler only reads it. Formatting happens here, not in the
// handler, which may call only async-signal-safe functions.
char g_prefix[64] = "gpujob";

void write_text(const char* text) {
  size_t left = std::strlen(text);
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, text, left);
    if (n <= 0) return;
    text += n;
    left -= static_cast<size_t>(n);
  }
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV (Segmentation fault)";
    case SIGBUS: return "SIGBUS (Bus error)";
    case SIGFPE: return "SIGFPE (Arithmetic exception)";
    case SIGILL: return "SIGILL (Illegal instruction)";
    case SIGABRT: return "SIGABRT (Aborted)";
    default: return "fatal signal";
  }
}

extern "C" void on_fatal_signal(int sig) {
  write_text(g_prefix);
  write_text(": fatal signal ");
  write_text(signal_name(sig));
  write_text("; native stack:\n");
  void* frames[64];
  const int n = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, n, STDERR_FILENO);
  // Default action: the process ends by this signal, as it would have without the report.
  std::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void install_crash_report(int rank) {
  if (rank >= 0) {
    std::snprintf(g_prefix, sizeof g_prefix, "gpujob rank %d", rank);
  } else {
    std::snprintf(g_prefix, sizeof g_prefix, "gpujob");
  }
  // backtrace() loads libgcc on first use, which is not safe inside a handler: do it now.
  void* warm_up[1];
  (void)::backtrace(warm_up, 1);
  struct sigaction action {};
  action.sa_handler = on_fatal_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(sig, &action, nullptr);
}

}  // namespace gpujob
