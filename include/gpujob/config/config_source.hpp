// ConfigSource: where each key of a run config came from (file and line, or --set), for one-line errors.
#pragma once

#include <map>
#include <set>
#include <string>

#include "gpujob/util/error.hpp"

namespace gpujob::config {

class ConfigSource {
 public:
  ConfigSource() = default;
  explicit ConfigSource(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  void set_line(const std::string& key_path, int line) { lines_[key_path] = line; }
  void mark_override(const std::string& key_path) { overrides_.insert(key_path); }

  // "FILE:LINE: key.path" for a key from the file (the nearest enclosing key's line when the key
  // itself is absent), or "--set key.path" for a key given on the command line.
  std::string where(const std::string& key_path) const;

  // Throws gpujob::Error "where(key_path): parts...".
  template <typename... Parts>
  [[noreturn]] void fail(const std::string& key_path, const Parts&... parts) const {
    gpujob::fail(where(key_path), ": ", parts...);
  }

 private:
  std::string file_;
  std::map<std::string, int> lines_;  // 1-based line of each key path seen in the file
  std::set<std::string> overrides_;   // key paths set by --set
};

}  // namespace gpujob::config
