// The gpujob command line: `gpujob CONFIG`, `gpujob plan`, `gpujob tokenize`, ...
#pragma once

namespace gpujob::jobs {

// Parses argv, runs the chosen command, and returns the process exit status. Every exception is
// caught here and printed as one line; under MPI a failure aborts the whole job.
int run_cli(int argc, char** argv);

}  // namespace gpujob::jobs
