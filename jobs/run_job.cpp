#include "jobs/run_job.hpp"

#include <cstdio>
#include <cstdlib>
#include <optional>

#include "gpujob/cluster/coordinator.hpp"
#include "gpujob/cluster/gpu_count.hpp"
#include "gpujob/cluster/layout.hpp"
#include "gpujob/cluster/stop_signal.hpp"
#include "gpujob/cluster/world.hpp"
#include "gpujob/config/load_config.hpp"
#include "gpujob/util/crash_report.hpp"
#include "gpujob/util/log.hpp"
#include "jobs/job_registry.hpp"

namespace gpujob::jobs {

int run_config_file(int* argc, char*** argv, const std::string& config_path, const std::vector<std::string>& sets) {
  cluster::World world(argc, argv);
  cluster::install_stop_handlers();
  init_logging(world.size() > 1 ? world.rank() : -1);
  install_crash_report(world.size() > 1 ? world.rank() : -1);
  try {
    // Startup: every step is checked on every rank and agreed on, so a bad config or launch is
    // reported once and all ranks exit with status 2 instead of some waiting for the others.
    config::RunConfig cfg;
    world.agree([&] {
      std::vector<config::ConfigOverride> overrides;
      for (const auto& s : sets) overrides.push_back(config::parse_override(s));
      cfg = config::load_run_config(config_path, overrides);
    });
    world.detect_node(cfg.layout.node_detection);
    const cluster::NodeInfo& node = world.node();
    std::optional<cluster::Layout> layout;
    std::optional<cluster::RankPlacement> self;
    int visible = 0;
    JobFunction job = nullptr;
    world.agree([&] {
      visible = cluster::visible_gpu_count();
      layout = cluster::Layout::from_config(cfg, node.local_size);
      cluster::LaunchFacts facts;
      facts.world_size = world.size();
      facts.node = node.node;
      facts.nodes = node.nodes;
      facts.local_size = node.local_size;
      facts.host = node.host;
      facts.visible_gpus = visible;
      if (const char* n = std::getenv("SLURM_NTASKS")) facts.slurm_tasks = std::atoi(n);
      cluster::check_launch(*layout, cfg, facts);
      self = layout->placement(node.node, node.local_rank, node.nodes);
      self->rank = world.rank();
      spdlog::debug("placement: rank {} host {} node {}/{} local rank {}/{} from {} role {} gpu {}", world.rank(),
                    node.host, node.node, node.nodes, node.local_rank, node.local_size,
                    node.from_slurm ? "slurm" : "mpi", config::name(self->roles.front().role), self->roles.front().gpu);
      job = find_job(cfg.job);
      if (!job) cfg.source.fail("job", "job ", config::name(cfg.job), " is not available in this build");
    });
    if (world.rank() == 0) {
      spdlog::info("{}: job {}, {} rank(s) on {} node(s), results in {}", cfg.source.file(), config::name(cfg.job),
                   world.size(), node.nodes, cfg.run_dir());
    }
    JobContext context{cfg, world, *layout, *self, visible};
    const int status = job(context);
    if (status == cluster::kExitStopped && world.rank() == 0) {
      spdlog::warn("stopped before the end (exit status {}); rerun the same command to continue",
                   cluster::kExitStopped);
    }
    return status;
  } catch (const cluster::AgreedFailure& e) {
    if (world.rank() == 0) {
      std::fprintf(stderr, "gpujob: error: %s\n", e.what());
      std::fflush(stderr);
    }
    return cluster::kExitConfigError;
  } catch (const std::exception& e) {
    cluster::report_failure(e.what(), world.rank(), world.host());
  } catch (...) {
    cluster::report_failure("unknown exception", world.rank(), world.host());
  }
}

}  // namespace gpujob::jobs
