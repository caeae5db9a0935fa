#include "jobs/cli.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "gpujob/cluster/stop_signal.hpp"
#include "gpujob/util/error.hpp"
#include "jobs/demo_model.hpp"
#include "jobs/plan_command.hpp"
#include "jobs/run_job.hpp"
#include "jobs/tokenize_command.hpp"

namespace gpujob::jobs {

int run_cli(int argc, char** argv) {
  CLI::App app{"gpujob: a job runner for GPU clusters\n\n"
               "  gpujob CONFIG [--set key.path=value]...   run the config's job (under mpirun or alone)\n"
               "  gpujob plan CONFIG --np N [--nodes K]      print the role table\n",
               "gpujob"};
  app.set_version_flag("--version", GPUJOB_VERSION);
  std::string config_path;
  std::vector<std::string> sets;
  app.add_option("config", config_path, "run config (YAML); every key: configs/reference.yaml");
  app.add_option("--set", sets, "override one key, e.g. --set extract.layers=[0,2] (repeatable)");

  // ---- subcommands: one line each, add_<name>_command(CLI::App&) from jobs/<name>_command.cpp ----
  add_plan_command(app);
  add_tokenize_command(app);
  add_make_demo_model_command(app);
  // ---- end of subcommands ----

  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    // A subcommand failed (they run without MPI): one line.
    std::fprintf(stderr, "gpujob: error: %s\n", e.what());
    return cluster::kExitFailure;
  }
  if (!app.get_subcommands().empty()) return 0;
  if (config_path.empty()) {
    std::fputs(app.help().c_str(), stderr);
    return cluster::kExitConfigError;
  }
  try {
    return run_config_file(&argc, &argv, config_path, sets);
  } catch (const std::exception& e) {
    // Before MPI started (run_config_file handles everything after).
    std::fprintf(stderr, "gpujob: error: %s\n", e.what());
    return cluster::kExitFailure;
  }
}

}  // namespace gpujob::jobs
