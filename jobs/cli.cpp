#include "jobs/cli.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "gpujob/util/error.hpp"
#include "jobs/tokenize_command.hpp"

namespace gpujob::jobs {

int run_cli(int argc, char** argv) {
  CLI::App app{"gpujob: a job runner for GPU clusters", "gpujob"};
  app.set_version_flag("--version", GPUJOB_VERSION);
  add_tokenize_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}

}  // namespace gpujob::jobs
