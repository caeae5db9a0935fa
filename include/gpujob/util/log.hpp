// Logging: spdlog with a rank-aware prefix, set up once per process.
#pragma once

#include <spdlog/spdlog.h>

namespace gpujob {

// Sets the log pattern to "[gpujob rank R] message" and the level from GPUJOB_LOG_LEVEL
// (trace, debug, info, warn, error; default info).
void init_logging(int rank);

}  // namespace gpujob
