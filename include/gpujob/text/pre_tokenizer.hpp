// HF tokenizer.json pre-tokenizers (Split, ByteLevel, Metaspace, Digits, Sequence): cut normalized
// text into the words that the BPE model encodes one by one.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpujob::text {

class Regex;
enum class WordPattern;

// One piece of pre-tokenized text. `at_start` is true only for a piece that begins at the first
// byte of the whole input (Metaspace's prepend_scheme "first" looks at it).
struct PreToken {
  std::string text;
  bool at_start = false;
};

// The words of one piece of text, stored back to back so that splitting allocates nothing per word.
struct WordList {
  std::string buffer;
  std::vector<std::pair<std::size_t, std::size_t>> ranges;  // [begin, end) in buffer
  void clear() {
    buffer.clear();
    ranges.clear();
  }
  std::size_t size() const { return ranges.size(); }
  std::string_view operator[](std::size_t i) const {
    return std::string_view(buffer).substr(ranges[i].first, ranges[i].second - ranges[i].first);
  }
};

class PreTokenizer {
 public:
  // Builds the chain from the "pre_tokenizer" object of tokenizer.json (null: the whole piece is
  // one word). `where` names the file for error messages.
  static std::unique_ptr<PreTokenizer> from_json(const nlohmann::json& spec, const std::string& where);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Splits one normalized piece of text into words (appended to `out`).
  void split(std::string_view text, bool at_start, std::vector<PreToken>& out) const;
  // The same into a WordList, with a fast path for the usual byte-level pipelines.
  void split(std::string_view text, bool at_start, WordList& out) const;

  // Whether a ByteLevel step maps bytes to GPT-2's printable stand-ins.
  bool byte_level() const { return byte_level_; }

 private:
  PreTokenizer() = default;
  enum class Kind { kSplit, kByteLevel, kMetaspace, kDigits };
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  struct Step {
    Kind kind;
    std::shared_ptr<Regex> pattern;  // Split; ByteLevel with use_regex
    const WordPattern* known = nullptr;  // hand-written equivalent of `pattern`, when there is one
    Behavior behavior = Behavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;   // ByteLevel
    std::string replacement;         // Metaspace (UTF-8 of the replacement character)
    std::string prepend_scheme;      // Metaspace: "always", "first" or "never"
    bool split = true;               // Metaspace
    bool individual_digits = false;  // Digits
  };
  void add(const nlohmann::json& spec, const std::string& where);
  void apply(const Step& step, std::vector<PreToken>& pieces) const;
  std::vector<Step> steps_;
  bool byte_level_ = false;
  bool fast_byte_level_ = false;  // [Split(Isolated)] + ByteLevel without regex, or ByteLevel with regex
};

}  // namespace gpujob::text
