#include "gpujob/text/pre_tokenizer.hpp"

#include <algorithm>

#include "gpujob/text/byte_level.hpp"
#include "gpujob/text/regex.hpp"
#include "gpujob/text/utf8.hpp"
#include "gpujob/text/word_patterns.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::text {

namespace {
struct Span {
  std::size_t begin, end;
  bool is_match;
};

const WordPattern kKnownPatterns[] = {WordPattern::kGpt2, WordPattern::kLlama3, WordPattern::kQwen2};

const WordPattern* known_pattern(const std::string& regex) {
  auto p = recognize_word_pattern(regex);
  return p ? &kKnownPatterns[static_cast<int>(*p)] : nullptr;
}

// The text cut into alternating match / non-match spans (non-empty only).
std::vector<Span> spans_of(const Regex& regex, const WordPattern* known, std::string_view text, bool invert) {
  std::vector<Span> spans;
  std::size_t pos = 0;
  std::vector<std::pair<std::size_t, std::size_t>> matches;
  if (known) find_words(*known, text, matches);
  else matches = regex.find_all(text);
  for (auto [b, e] : matches) {
    if (b > pos) spans.push_back({pos, b, invert});
    spans.push_back({b, e, !invert});
    pos = e;
  }
  if (pos < text.size()) spans.push_back({pos, text.size(), invert});
  return spans;
}
}  // namespace

std::unique_ptr<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& spec, const std::string& where) {
  std::unique_ptr<PreTokenizer> p(new PreTokenizer());
  if (!spec.is_null()) p->add(spec, where);
  return p;
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::add(const nlohmann::json& spec, const std::string& where) {
  const std::string type = spec.value("type", "");
  Step s{};
  if (type == "Sequence") {
    for (const auto& sub : spec.at("pretokenizers")) add(sub, where);
    return;
  } else if (type == "Split") {
    s.kind = Kind::kSplit;
    const auto& pattern = spec.at("pattern");
    if (pattern.contains("String")) s.pattern = std::make_shared<Regex>(pattern["String"].get<std::string>(), true);
    else s.pattern = std::make_shared<Regex>(pattern.at("Regex").get<std::string>());
    if (pattern.contains("Regex")) s.known = known_pattern(pattern["Regex"].get<std::string>());
    const std::string behavior = spec.at("behavior").get<std::string>();
    if (behavior == "Removed") s.behavior = Behavior::kRemoved;
    else if (behavior == "Isolated") s.behavior = Behavior::kIsolated;
    else if (behavior == "MergedWithPrevious") s.behavior = Behavior::kMergedWithPrevious;
    else if (behavior == "MergedWithNext") s.behavior = Behavior::kMergedWithNext;
    else if (behavior == "Contiguous") s.behavior = Behavior::kContiguous;
    else fail(where, ": Split behavior '", behavior, "' is unknown");
    s.invert = spec.value("invert", false);
  } else if (type == "ByteLevel") {
    s.kind = Kind::kByteLevel;
    s.add_prefix_space = spec.value("add_prefix_space", false);
    if (spec.value("use_regex", true)) {
      s.pattern = std::make_shared<Regex>(gpt2_word_regex());
      s.known = known_pattern(gpt2_word_regex());
    }
    byte_level_ = true;
  } else if (type == "Metaspace") {
    s.kind = Kind::kMetaspace;
    s.replacement = spec.value("replacement", "\xE2\x96\x81");
    if (spec.contains("prepend_scheme")) {
      s.prepend_scheme = spec["prepend_scheme"].get<std::string>();
    } else {  // files written before prepend_scheme existed carry add_prefix_space
      s.prepend_scheme = spec.value("add_prefix_space", true) ? "always" : "never";
    }
    s.split = spec.value("split", true);
    s.pattern = std::make_shared<Regex>(s.replacement, true);
  } else if (type == "Digits") {
    s.kind = Kind::kDigits;
    s.individual_digits = spec.value("individual_digits", false);
    s.pattern = std::make_shared<Regex>(s.individual_digits ? "\\p{N}" : "\\p{N}+");
  } else {
    fail(where, ": pre_tokenizer type '", type,
         "' is not supported (expected Split, ByteLevel, Metaspace, Digits or Sequence)");
  }
  steps_.push_back(std::move(s));
  const auto& st = steps_;
  auto plain_byte_level = [](const Step& b) { return b.kind == Kind::kByteLevel && !b.add_prefix_space; };
  fast_byte_level_ =
      (st.size() == 1 && plain_byte_level(st[0]) && st[0].pattern) ||
      (st.size() == 2 && st[0].kind == Kind::kSplit && st[0].behavior == Behavior::kIsolated && !st[0].invert &&
       plain_byte_level(st[1]) && !st[1].pattern);
}

void PreTokenizer::split(std::string_view text, bool at_start, WordList& out) const {
  if (!fast_byte_level_) {
    std::vector<PreToken> words;
    split(text, at_start, words);
    for (const PreToken& w : words) {
      std::size_t b = out.buffer.size();
      out.buffer += w.text;
      out.ranges.emplace_back(b, out.buffer.size());
    }
    return;
  }
  // Words are the Isolated spans of the one regex; each is mapped to byte-level stand-ins.
  const Step& split_step = steps_[0];
  for (const Span& sp : spans_of(*split_step.pattern, split_step.known, text, false)) {
    std::size_t b = out.buffer.size();
    byte_level_encode(text.substr(sp.begin, sp.end - sp.begin), out.buffer);
    out.ranges.emplace_back(b, out.buffer.size());
  }
}

void PreTokenizer::split(std::string_view text, bool at_start, std::vector<PreToken>& out) const {
  std::vector<PreToken> pieces;
  pieces.push_back({std::string(text), at_start});
  for (const Step& step : steps_) apply(step, pieces);
  for (auto& p : pieces)
    if (!p.text.empty()) out.push_back(std::move(p));
}

void PreTokenizer::apply(const Step& step, std::vector<PreToken>& pieces) const {
  std::vector<PreToken> next;
  next.reserve(pieces.size() * 2);
  auto emit_spans = [&](const PreToken& piece, const std::vector<Span>& spans, Behavior behavior) {
    // Groups spans as HF's NormalizedString::split does for each delimiter behavior.
    std::vector<std::pair<std::size_t, std::size_t>> groups;
    bool previous_match = false;
    switch (behavior) {
      case Behavior::kIsolated:
        for (const Span& s : spans) groups.emplace_back(s.begin, s.end);
        break;
      case Behavior::kRemoved:
        for (const Span& s : spans)
          if (!s.is_match) groups.emplace_back(s.begin, s.end);
        break;
      case Behavior::kMergedWithPrevious:
        for (const Span& s : spans) {
          if (s.is_match && !previous_match && !groups.empty()) groups.back().second = s.end;
          else groups.emplace_back(s.begin, s.end);
          previous_match = s.is_match;
        }
        break;
      case Behavior::kMergedWithNext:
        for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
          if (it->is_match && !previous_match && !groups.empty()) groups.back().first = it->begin;
          else groups.emplace_back(it->begin, it->end);
          previous_match = it->is_match;
        }
        std::reverse(groups.begin(), groups.end());
        break;
      case Behavior::kContiguous:
        for (std::size_t i = 0; i < spans.size(); ++i) {
          if (i > 0 && spans[i].is_match == previous_match) groups.back().second = spans[i].end;
          else groups.emplace_back(spans[i].begin, spans[i].end);
          previous_match = spans[i].is_match;
        }
        break;
    }
    for (auto [b, e] : groups)
      if (e > b) next.push_back({piece.text.substr(b, e - b), piece.at_start && b == 0});
  };

  for (PreToken& piece : pieces) {
    switch (step.kind) {
      case Kind::kSplit:
      case Kind::kDigits:
        emit_spans(piece, spans_of(*step.pattern, step.known, piece.text, step.invert),
                   step.kind == Kind::kDigits ? Behavior::kIsolated : step.behavior);
        break;
      case Kind::kByteLevel: {
        if (step.add_prefix_space && (piece.text.empty() || piece.text[0] != ' ')) piece.text.insert(0, " ");
        std::vector<PreToken> words;
        if (step.pattern) {
          for (const Span& sp : spans_of(*step.pattern, step.known, piece.text, false))
            words.push_back({piece.text.substr(sp.begin, sp.end - sp.begin), piece.at_start && sp.begin == 0});
        } else {
          words.push_back(std::move(piece));
        }
        for (PreToken& w : words) {
          std::string mapped;
          mapped.reserve(w.text.size() * 2);
          byte_level_encode(w.text, mapped);
          next.push_back({std::move(mapped), w.at_start});
        }
        break;
      }
      case Kind::kMetaspace: {
        std::string t;
        t.reserve(piece.text.size() + 8);
        for (char c : piece.text) {
          if (c == ' ') t += step.replacement;
          else t.push_back(c);
        }
        bool starts = t.compare(0, step.replacement.size(), step.replacement) == 0;
        if (!starts && (step.prepend_scheme == "always" || (step.prepend_scheme == "first" && piece.at_start)))
          t.insert(0, step.replacement);
        PreToken replaced{std::move(t), piece.at_start};
        if (step.split) {
          emit_spans(replaced, spans_of(*step.pattern, nullptr, replaced.text, false), Behavior::kMergedWithNext);
        } else {
          next.push_back(std::move(replaced));
        }
        break;
      }
    }
  }
  pieces = std::move(next);
}

}  // namespace gpujob::text
