// Loading a run config: YAML file + --set overrides -> validated RunConfig, or one-line errors.
#pragma once

#include <string>
#include <vector>

#include "gpujob/config/run_config.hpp"

namespace gpujob::config {

// One `--set key.path=value` from the command line; the value is read as YAML (`[0, 2]` is a list).
struct ConfigOverride {
  std::string key;    // dotted key path, e.g. extract.layers
  std::string value;  // YAML text
};

// Splits "key.path=value"; throws gpujob::Error on a missing '='.
ConfigOverride parse_override(const std::string& text);

// Reads, parses and validates `path`. Every error is a gpujob::Error whose message is one line:
// "FILE:LINE: key.path: found ..., expected ...". Nothing is validated against the machine here
// (GPU counts, ranks): the layout does that at startup.
RunConfig load_run_config(const std::string& path, const std::vector<ConfigOverride>& overrides = {});

// The same for YAML text; `file_name` only labels errors and names the run by default.
RunConfig parse_run_config(const std::string& yaml_text, const std::string& file_name,
                           const std::vector<ConfigOverride>& overrides = {});

// Every leaf key path the parser reads ("layout.roles.generator.gpus"), sorted. A test checks
// configs/reference.yaml against it.
std::vector<std::string> known_config_keys();

// Per-job checks of a parsed config (required keys, ranges); part of load_run_config.
void validate_run_config(const RunConfig& config);

}  // namespace gpujob::config
