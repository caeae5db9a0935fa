// The job registry: which function runs each `job:` of a config, and what a job receives.
#pragma once

#include "gpujob/cluster/layout.hpp"
#include "gpujob/cluster/world.hpp"
#include "gpujob/config/run_config.hpp"

namespace gpujob::jobs {

// Everything a job needs, valid for the whole run. Every rank calls the job with its own row.
struct JobContext {
  const config::RunConfig& config;
  cluster::World& world;               // MPI world, node info (world.node()), agree()
  const cluster::Layout& layout;       // the role table of every rank
  const cluster::RankPlacement& self;  // this rank's row: roles (in phase order), GPU, groups
  int visible_gpus = 0;                // GPUs this process sees
};

// Runs the job on this rank and returns the exit status: 0, or cluster::kExitStopped when a stop
// signal ended it early (Coordinator::finish() says so). Throw gpujob::Error on failure.
using JobFunction = int (*)(JobContext& context);

// The registered function of a job kind, or null when this build has none.
JobFunction find_job(config::JobKind kind);

}  // namespace gpujob::jobs
