// HF tokenizer.json normalizers (NFC/NFD/NFKC/NFKD, Lowercase, Replace, Prepend, Strip, Sequence),
// applied to each piece of text between added tokens, as HF does.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpujob::text {

class Regex;

class Normalizer {
 public:
  // Builds the chain from the "normalizer" object of tokenizer.json (null: identity). `where`
  // names the file for error messages.
  static std::unique_ptr<Normalizer> from_json(const nlohmann::json& spec, const std::string& where);
  ~Normalizer();
  Normalizer(const Normalizer&) = delete;
  Normalizer& operator=(const Normalizer&) = delete;

  std::string normalize(std::string_view text) const;
  bool empty() const { return steps_.empty(); }

 private:
  Normalizer() = default;
  enum class Kind { kNfc, kNfd, kNfkc, kNfkd, kLowercase, kReplace, kPrepend, kStrip };
  struct Step {
    Kind kind;
    std::string from, to;             // Replace (literal) / Prepend (to)
    std::shared_ptr<Regex> pattern;   // Replace with a regex
    bool left = false, right = false; // Strip
  };
  void add(const nlohmann::json& spec, const std::string& where);
  std::vector<Step> steps_;
};

// Unicode normalization of UTF-8 text; form is one of "NFC", "NFD", "NFKC", "NFKD".
std::string unicode_normalize(std::string_view text, const std::string& form);

}  // namespace gpujob::text
