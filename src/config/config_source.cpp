#include "gpujob/config/config_source.hpp"

namespace gpujob::config {

namespace {
// "a.b[3].c" -> "a.b[3]" -> "a.b" -> "a" -> "".
std::string parent_path(const std::string& path) {
  const auto cut = path.find_last_of(".[");
  return cut == std::string::npos ? std::string() : path.substr(0, cut);
}
}  // namespace

std::string ConfigSource::where(const std::string& key_path) const {
  for (std::string p = key_path; !p.empty(); p = parent_path(p)) {
    if (overrides_.count(p)) return concat("--set ", key_path);
  }
  for (std::string p = key_path;; p = parent_path(p)) {
    if (auto it = lines_.find(p); it != lines_.end()) return concat(file_, ":", it->second, ": ", key_path);
    if (p.empty()) break;
  }
  return concat(file_, ": ", key_path);
}

}  // namespace gpujob::config
