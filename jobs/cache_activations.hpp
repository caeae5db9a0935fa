// The activation jobs: `extract` (hidden states of the data rows), `cache_activations` (generate or
// reuse completions, then hidden states of prompt + completion) and `sweep` (cache_activations,
// then a linear probe per layer and position). One pipeline; generation and extraction overlap
// when their ranks differ and run as phases when the same ranks hold both roles.
#pragma once

#include "jobs/job_registry.hpp"

namespace gpujob::jobs {

int run_extract_job(JobContext& context);
int run_cache_activations_job(JobContext& context);
int run_sweep_job(JobContext& context);

}  // namespace gpujob::jobs
