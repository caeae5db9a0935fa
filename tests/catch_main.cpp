// The one Catch2 main, compiled once and shared by every test executable.
#if defined(GPUJOB_CATCH2_V3)
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif

#include "gpujob/util/crash_report.hpp"

int main(int argc, char** argv) {
  // Catch2 reports a crash inside a test case; this also names one outside them (static
  // initialisation, process exit) and prints the native stack.
  gpujob::install_crash_report(-1);
  return Catch::Session().run(argc, argv);
}
