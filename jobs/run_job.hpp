// `gpujob CONFIG [--set key=value]...`: starts MPI, validates everything, and runs the config's job.
#pragma once

#include <string>
#include <vector>

namespace gpujob::jobs {

// Returns the process exit status: 0 done, 2 invalid config or launch (printed once by rank 0),
// 75 stopped by SIGTERM/SIGUSR1 with progress recorded. A failure while the job runs aborts the
// whole MPI job with status 1 after one line on rank 0.
int run_config_file(int* argc, char*** argv, const std::string& config_path, const std::vector<std::string>& sets);

}  // namespace gpujob::jobs
