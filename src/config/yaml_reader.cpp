#include "yaml_reader.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gpujob::config::detail {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  // Close enough to be a typo: a third of the word, at least 2 edits.
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  if (best_distance <= limit) return best;
  // Or a shortened name: "delay" for "delay_ms".
  for (const auto& c : candidates) {
    if (word.size() >= 3 && c.rfind(word, 0) == 0) return c;
  }
  return std::string();
}

std::string describe_node(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return "\"" + node.Scalar() + "\"";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Null: return "nothing";
    default: return "nothing";
  }
}

KeyReader::KeyReader(YAML::Node node, std::string path, ParseContext context)
    : node_(std::move(node)), path_(std::move(path)), context_(context) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    context_.source->fail(path_, "found ", describe_node(node_), ", expected a map of settings");
  }
  if (node_.IsMap()) {
    for (const auto& entry : node_) {
      record_line(child_path(entry.first.Scalar()), entry.first);
    }
  }
}

void KeyReader::record_line(const std::string& path, const YAML::Node& n) const {
  const YAML::Mark mark = n.Mark();
  if (mark.line >= 0) context_.source->set_line(path, mark.line + 1);
}

YAML::Node KeyReader::lookup(const std::string& key) {
  asked_.push_back(key);
  if (context_.known_keys) {
    // Known keys are recorded without list indices: layout.roles.generator.gpus.
    std::string normalised;
    for (size_t i = 0; i < path_.size(); ++i) {
      if (path_[i] == '[') {
        while (i < path_.size() && path_[i] != ']') ++i;
        continue;
      }
      normalised += path_[i];
    }
    context_.known_keys->insert(normalised.empty() ? key : normalised + "." + key);
  }
  if (!node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  // A const lookup does not insert the key into the tree.
  const YAML::Node& const_node = node_;
  YAML::Node child = const_node[key];
  // An absent key gives an invalid handle in yaml-cpp; hand out a valid, undefined node instead.
  if (!child.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
  return child;
}

bool KeyReader::has(const std::string& key) {
  if (!node_.IsMap()) return false;
  const YAML::Node& const_node = node_;
  YAML::Node child = const_node[key];
  return child.IsDefined() && !child.IsNull();
}

KeyReader KeyReader::section(const std::string& key) {
  YAML::Node child = lookup(key);
  // The section path itself is not a leaf key; drop it from the known leaves.
  if (context_.known_keys) {
    std::string full = child_path(key);
    context_.known_keys->erase(full);
  }
  return KeyReader(child, child_path(key), context_);
}

void KeyReader::finish() const {
  if (!node_.IsMap()) return;
  for (const auto& entry : node_) {
    const std::string key = entry.first.Scalar();
    if (std::find(asked_.begin(), asked_.end(), key) != asked_.end()) continue;
    const std::string guess = closest_match(key, asked_);
    if (!guess.empty()) {
      context_.source->fail(child_path(key), "unknown key '", key, "' (did you mean '", guess, "'?)");
    }
    std::string known;
    for (size_t i = 0; i < asked_.size(); ++i) known += (i ? ", " : "") + asked_[i];
    context_.source->fail(child_path(key), "unknown key '", key, "', expected one of: ", known);
  }
}

void KeyReader::convert(const YAML::Node& n, const std::string& path, bool& out) const {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "yes" || s == "on") { out = true; return; }
    if (s == "false" || s == "False" || s == "no" || s == "off") { out = false; return; }
  }
  context_.source->fail(path, "found ", describe_node(n), ", expected true or false");
}

void KeyReader::convert(const YAML::Node& n, const std::string& path, int64_t& out) const {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    size_t used = 0;
    try {
      const long long v = std::stoll(s, &used, 10);
      if (used == s.size()) {
        out = v;
        return;
      }
    } catch (const std::exception&) {
    }
  }
  context_.source->fail(path, "found ", describe_node(n), ", expected an integer");
}

void KeyReader::convert(const YAML::Node& n, const std::string& path, int& out) const {
  int64_t wide = 0;
  convert(n, path, wide);
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
    context_.source->fail(path, "found ", wide, ", expected an integer of at most 2^31 - 1");
  }
  out = static_cast<int>(wide);
}

void KeyReader::convert(const YAML::Node& n, const std::string& path, double& out) const {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    size_t used = 0;
    try {
      const double v = std::stod(s, &used);
      if (used == s.size() && std::isfinite(v)) {
        out = v;
        return;
      }
    } catch (const std::exception&) {
    }
  }
  context_.source->fail(path, "found ", describe_node(n), ", expected a number");
}

void KeyReader::convert(const YAML::Node& n, const std::string& path, std::string& out) const {
  if (!n.IsScalar()) context_.source->fail(path, "found ", describe_node(n), ", expected a string");
  out = n.Scalar();
}

}  // namespace gpujob::config::detail
