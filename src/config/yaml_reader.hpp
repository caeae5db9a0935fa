// KeyReader: checked, typed reads of one YAML map with key paths, lines and unknown-key detection.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gpujob/config/config_source.hpp"

namespace gpujob::config::detail {

// Names of an enum's values, in the order they are listed in errors.
template <typename E>
const std::vector<std::pair<const char*, E>>& enum_names();

// Shared by every reader of one parse: the source map and the set of keys the parser asked for.
struct ParseContext {
  ConfigSource* source;
  std::set<std::string>* known_keys;  // normalised key paths (no list indices); may be null
};

// Closest candidate within a small edit distance, or "" when none is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

std::string describe_node(const YAML::Node& node);

class KeyReader {
 public:
  // `node` may be undefined or null (an absent section): every read then gives its default, and
  // the keys are still recorded as known.
  KeyReader(YAML::Node node, std::string path, ParseContext context);

  const std::string& path() const { return path_; }
  std::string child_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  bool has(const std::string& key);  // present and not null
  KeyReader section(const std::string& key);

  template <typename T>
  T get(const std::string& key, T fallback) {
    YAML::Node child = lookup(key);
    if (!child.IsDefined() || child.IsNull()) return fallback;
    T value{};
    convert(child, child_path(key), value);
    return value;
  }

  // Reports the first key of this map that no read asked for, with a suggestion.
  void finish() const;

 private:
  YAML::Node lookup(const std::string& key);

  void convert(const YAML::Node& n, const std::string& path, bool& out) const;
  void convert(const YAML::Node& n, const std::string& path, int& out) const;
  void convert(const YAML::Node& n, const std::string& path, int64_t& out) const;
  void convert(const YAML::Node& n, const std::string& path, double& out) const;
  void convert(const YAML::Node& n, const std::string& path, std::string& out) const;
  template <typename E, typename = std::enable_if_t<std::is_enum_v<E>>>
  void convert(const YAML::Node& n, const std::string& path, E& out) const {
    const auto& names = enum_names<E>();
    std::vector<std::string> options;
    for (const auto& [text, value] : names) options.emplace_back(text);
    if (n.IsScalar()) {
      for (const auto& [text, value] : names) {
        if (n.Scalar() == text) {
          out = value;
          return;
        }
      }
    }
    std::string expected = "expected one of";
    for (size_t i = 0; i < options.size(); ++i) expected += (i ? ", " : " ") + options[i];
    const std::string guess = n.IsScalar() ? closest_match(n.Scalar(), options) : "";
    context_.source->fail(path, "found ", describe_node(n), ", ", expected,
                          guess.empty() ? "" : " (did you mean '" + guess + "'?)");
  }
  template <typename T>
  void convert(const YAML::Node& n, const std::string& path, std::vector<T>& out) const {
    if (!n.IsSequence()) {
      context_.source->fail(path, "found ", describe_node(n), ", expected a list");
    }
    out.clear();
    for (size_t i = 0; i < n.size(); ++i) {
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      record_line(item_path, n[i]);
      T item{};
      convert(n[i], item_path, item);
      out.push_back(std::move(item));
    }
  }

  void record_line(const std::string& path, const YAML::Node& n) const;

  YAML::Node node_;
  std::string path_;
  ParseContext context_;
  std::vector<std::string> asked_;  // keys read so far, for finish()
};

}  // namespace gpujob::config::detail
