// job: selftest, the coordinator's whole path without models: chunks of numbers, per-rank delays,
// injected failures, a dependent second stage, stop and resume.
#pragma once

#include "jobs/job_registry.hpp"

namespace gpujob::jobs {

// Stage 1 squares and sums each chunk's numbers; stage 2 (selftest.two_stages) doubles each stage-1
// result it receives through the coordinator. Rank 0 appends every result to
// <run_dir>/selftest_progress.jsonl as it arrives (a rerun skips what is there) and at the end
// writes <run_dir>/selftest.json: {"chunks": [{"queue", "id", "rank", "value"}...], "complete": true}.
// After a stop signal it writes <run_dir>/selftest_stopped.json and returns kExitStopped.
int run_selftest_job(JobContext& context);

}  // namespace gpujob::jobs
