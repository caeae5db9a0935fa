// Job spec_thinking: the Speculative Thinking benchmark (modes large, small, spec) over MPI ranks.
#pragma once

#include "jobs/job_registry.hpp"

namespace gpujob::jobs {

// Runs the job on this rank, collectively over the world. target_shard ranks load their shard of
// config.model and serve commands; draft ranks load theirs of config.draft_model; the draft's
// shard 0 drives: problems x runs per mode after one warm-up, then the JSON files in
// spec.output_dir and the table on stdout. Returns 0.
int run_spec_thinking_job(JobContext& context);

}  // namespace gpujob::jobs
