#include "jobs/plan_command.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "gpujob/cluster/layout.hpp"
#include "gpujob/config/load_config.hpp"
#include "jobs/memory_plan.hpp"

namespace gpujob::jobs {

std::string plan_text(const std::string& config_path, int np, int nodes, int gpus_per_node, double gpu_memory_gib) {
  GPUJOB_CHECK(nodes >= 1, "--nodes ", nodes, ": expected at least 1");
  GPUJOB_CHECK(np >= 1, "--np ", np, ": expected at least 1");
  const config::RunConfig cfg = config::load_run_config(config_path);
  if (np % nodes != 0) {
    fail("--np ", np, " does not split evenly over ", nodes, " nodes; the layout repeats per node");
  }
  const cluster::Layout layout = cluster::Layout::from_config(cfg, np / nodes);
  cluster::LaunchFacts facts;
  facts.world_size = np;
  facts.nodes = nodes;
  facts.local_size = np / nodes;
  facts.host = "node0";
  // No device is asked: GPU ids are checked against --gpus-per-node (or layout.gpus_per_node) only.
  config::RunConfig without_device = cfg;
  without_device.model.device = config::DevicePreference::cpu;
  cluster::check_launch(layout, without_device, facts);
  const int gpus = gpus_per_node > 0 ? gpus_per_node : cfg.layout.gpus_per_node;
  if (gpus > 0) cluster::check_gpu_ids(cfg, gpus, "node0");
  std::string text = cluster::format_role_table(layout, cfg, nodes);
  if (gpu_memory_gib > 0) text += memory_plan_text(cfg, layout, gpu_memory_gib);
  return text;
}

void add_plan_command(CLI::App& app) {
  struct Options {
    std::string config;
    int np = 0;
    int nodes = 1;
    int gpus_per_node = 0;
    double gpu_memory_gib = 0;
  };
  auto options = std::make_shared<Options>();
  CLI::App* plan = app.add_subcommand("plan", "print the role table of a config for a launch, without MPI or GPUs");
  plan->add_option("config", options->config, "run config (YAML)")->required();
  plan->add_option("--np", options->np, "ranks in the job (mpirun -np)")->required();
  plan->add_option("--nodes", options->nodes, "nodes the ranks are spread over (default 1)");
  plan->add_option("--gpus-per-node", options->gpus_per_node,
                   "GPUs per node, to check the GPU ids (default: layout.gpus_per_node; none: not checked)");
  plan->add_option("--gpu-memory-gib", options->gpu_memory_gib,
                   "memory of one GPU in GiB: adds what each rank's memory fraction holds (weights, KV-cache "
                   "slots) from the model's config.json");
  plan->callback([options] {
    const std::string text = plan_text(options->config, options->np, options->nodes, options->gpus_per_node,
                                       options->gpu_memory_gib);
    std::fputs(text.c_str(), stdout);
  });
}

}  // namespace gpujob::jobs
