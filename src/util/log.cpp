#include "gpujob/util/log.hpp"

#include <cstdlib>
#include <string>

namespace gpujob {

void init_logging(int rank) {
  spdlog::set_pattern("[gpujob " + std::string(rank >= 0 ? "rank " + std::to_string(rank) : "") +
                      "] %^%l%$: %v");
  spdlog::set_level(spdlog::level::info);
  if (const char* level = std::getenv("GPUJOB_LOG_LEVEL")) {
    spdlog::set_level(spdlog::level::from_str(level));
  }
}

}  // namespace gpujob
