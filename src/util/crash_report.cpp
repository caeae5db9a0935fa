#include "gpujob/util/crash_report.hpp"

#include <execinfo.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace gpujob {
namespace {

// Everything the handler touches is static and written before the crash: the handler may call
// only async-signal-safe functions (write, open, read, backtrace after its warm-up), so it
// formats numbers itself and finds modules in /proc/self/maps rather than through dladdr, which
// takes the loader's lock and would hang a crash inside the loader.
char g_prefix[64] = "gpujob";

void write_text(const char* text, size_t length) {
  while (length > 0) {
    const ssize_t n = ::write(STDERR_FILENO, text, length);
    if (n <= 0) return;
    text += n;
    length -= static_cast<size_t>(n);
  }
}
void write_text(const char* text) { write_text(text, std::strlen(text)); }

void write_hex(uintptr_t value) {
  char digits[2 + 2 * sizeof value];
  int n = 0;
  do {
    digits[sizeof digits - 1 - n++] = "0123456789abcdef"[value & 0xf];
    value >>= 4;
  } while (value != 0);
  digits[sizeof digits - 1 - n++] = 'x';
  digits[sizeof digits - 1 - n++] = '0';
  write_text(digits + sizeof digits - n, static_cast<size_t>(n));
}

void write_decimal(long value) {
  char digits[24];
  int n = 0;
  const bool negative = value < 0;
  unsigned long v = negative ? 0ul - static_cast<unsigned long>(value) : static_cast<unsigned long>(value);
  do {
    digits[sizeof digits - 1 - n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  if (negative) digits[sizeof digits - 1 - n++] = '-';
  write_text(digits + sizeof digits - n, static_cast<size_t>(n));
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

// The process's mappings, read from /proc/self/maps when the crash happens (libraries loaded
// after start-up are there too). Lines are kept in a static buffer and parsed in place.
struct Mapping {
  uintptr_t start = 0, end = 0, file_offset = 0;
  bool executable = false;
  const char* path = nullptr;  // NUL-terminated inside g_maps_text; "" for anonymous memory
};
char g_maps_text[1 << 19];
Mapping g_mappings[4096];
int g_mapping_count = 0;

uintptr_t parse_hex(const char*& p) {
  uintptr_t value = 0;
  for (;; ++p) {
    const char c = *p;
    if (c >= '0' && c <= '9') value = value * 16 + static_cast<uintptr_t>(c - '0');
    else if (c >= 'a' && c <= 'f') value = value * 16 + static_cast<uintptr_t>(c - 'a' + 10);
    else return value;
  }
}

void read_mappings() {
  g_mapping_count = 0;
  const int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  size_t size = 0;
  for (ssize_t n; size + 1 < sizeof g_maps_text &&
                  (n = ::read(fd, g_maps_text + size, sizeof g_maps_text - 1 - size)) > 0;) {
    size += static_cast<size_t>(n);
  }
  ::close(fd);
  g_maps_text[size] = '\0';
  // Line format: start-end perms offset dev inode [path]
  for (char* line = g_maps_text; *line != '\0' && g_mapping_count < 4096;) {
    char* newline = std::strchr(line, '\n');
    if (newline != nullptr) *newline = '\0';
    const char* p = line;
    Mapping m;
    m.start = parse_hex(p);
    if (*p == '-') ++p;
    m.end = parse_hex(p);
    while (*p == ' ') ++p;
    m.executable = p[0] != '\0' && p[1] != '\0' && p[2] == 'x';
    while (*p != ' ' && *p != '\0') ++p;  // perms
    while (*p == ' ') ++p;
    m.file_offset = parse_hex(p);
    for (int field = 0; field < 2; ++field) {  // dev, inode
      while (*p == ' ') ++p;
      while (*p != ' ' && *p != '\0') ++p;
    }
    while (*p == ' ') ++p;
    m.path = p;
    g_mappings[g_mapping_count++] = m;
    if (newline == nullptr) break;
    line = newline + 1;
  }
}

const Mapping* mapping_of(uintptr_t address) {
  for (int i = 0; i < g_mapping_count; ++i) {
    if (address >= g_mappings[i].start && address < g_mappings[i].end) return &g_mappings[i];
  }
  return nullptr;
}

// " (path+0xOFFSET)", the offset within the file (what addr2line takes for a shared library).
void write_location(uintptr_t address) {
  const Mapping* m = mapping_of(address);
  if (m == nullptr) {
    write_text(" (unmapped)");
    return;
  }
  write_text(" (");
  write_text(*m->path != '\0' ? m->path : "anonymous memory");
  write_text("+");
  write_hex(address - m->start + m->file_offset);
  write_text(m->executable ? ")" : ", not code)");
}

// Writes the thread, fault address, pc and the code addresses on the stack; returns whether the pc
// lies in code (so that unwinding from it is safe).
bool write_registers(const siginfo_t* info, const void* context) {
  const long thread = ::syscall(SYS_gettid);
  write_text("  thread ");
  write_decimal(thread);
  write_text(thread == ::getpid() ? " (main thread)" : " (not the main thread)");
  if (info != nullptr && (info->si_signo == SIGSEGV || info->si_signo == SIGBUS)) {
    write_text(", fault address ");
    write_hex(reinterpret_cast<uintptr_t>(info->si_addr));
  }
  write_text("\n");
#if defined(__x86_64__) && defined(REG_RIP)
  if (context == nullptr) return true;
  const auto* uc = static_cast<const ucontext_t*>(context);
  const auto pc = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
  const auto sp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
  read_mappings();
  write_text("  instruction ");
  write_hex(pc);
  write_location(pc);
  write_text("\n");
  const Mapping* pc_mapping = mapping_of(pc);
  const bool pc_in_code = pc_mapping != nullptr && pc_mapping->executable;
  if (!pc_in_code) {
    write_text("  the instruction pointer is outside all loaded code (a call through a stale function pointer)\n");
  }
  // When unwinding cannot start (no code at pc), the return addresses on the stack still say
  // who called: list the stack words that point into code, nearest first.
  const Mapping* stack = mapping_of(sp);
  if (stack == nullptr) return pc_in_code;
  write_text("  code addresses on the stack (nearest first; some may be stale):\n");
  int shown = 0;
  for (uintptr_t at = sp; at + sizeof(uintptr_t) <= stack->end && at < sp + 4096 * sizeof(uintptr_t) && shown < 16;
       at += sizeof(uintptr_t)) {
    const uintptr_t word = *reinterpret_cast<const uintptr_t*>(at);
    const Mapping* m = mapping_of(word);
    if (m == nullptr || !m->executable) continue;
    write_text("    ");
    write_hex(word);
    write_location(word);
    write_text("\n");
    ++shown;
  }
  return pc_in_code;
#else
  (void)context;
  return true;
#endif
}

extern "C" void on_fatal_signal(int sig, siginfo_t* info, void* context) {
  write_text(g_prefix);
  write_text(": fatal signal ");
  write_text(signal_name(sig));
  write_text("\n");
  // Registers and stack words first: they need no unwinding. The unwinder itself can fault when
  // the instruction pointer is not in code, so it runs last and only when the pc is in code.
  const bool pc_in_code = write_registers(info, context);
  if (pc_in_code) {
    write_text("  native stack:\n");
    void* frames[64];
    const int n = ::backtrace(frames, 64);
    ::backtrace_symbols_fd(frames, n, STDERR_FILENO);
  }
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
  action.sa_sigaction = on_fatal_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(sig, &action, nullptr);
}

}  // namespace gpujob
