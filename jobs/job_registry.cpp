// Adding a job: write `int run_NAME_job(JobContext&)` in jobs/NAME.cpp, declare it in its header,
// and add one line to the table below (plus its include).
#include "jobs/job_registry.hpp"

#include <utility>
#include <vector>

#include "jobs/cache_activations.hpp"
#include "jobs/generate.hpp"
#include "jobs/selftest.hpp"
#include "jobs/spec_thinking.hpp"

namespace gpujob::jobs {

namespace {

const std::vector<std::pair<config::JobKind, JobFunction>>& job_table() {
  static const std::vector<std::pair<config::JobKind, JobFunction>> table = {
      // ---- registered jobs: one line each ----
      {config::JobKind::selftest, run_selftest_job},
      {config::JobKind::extract, run_extract_job},
      {config::JobKind::cache_activations, run_cache_activations_job},
      {config::JobKind::sweep, run_sweep_job},
      {config::JobKind::generate, run_generate_job},
      {config::JobKind::spec_thinking, run_spec_thinking_job},
      // ---- end of registered jobs ----
  };
  return table;
}

}  // namespace

JobFunction find_job(config::JobKind kind) {
  for (const auto& [k, f] : job_table()) {
    if (k == kind) return f;
  }
  return nullptr;
}

}  // namespace gpujob::jobs
