#include "gpujob/io/answer.hpp"

#include <cctype>
#include <vector>

namespace gpujob::io {

namespace {

bool starts_with_at(const std::string& s, size_t pos, const std::string& prefix) {
  return s.compare(pos, prefix.size(), prefix) == 0;
}

// Index of the brace closing the one at `open`, or npos.
size_t matching_brace(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string::npos;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Peels wrappers around a boxed letter until nothing changes.
std::string unwrap(std::string s) {
  static const char* const kCommands[] = {"\\text", "\\textbf", "\\mathrm", "\\mathbf", "\\textrm"};
  for (bool changed = true; changed;) {
    changed = false;
    s = trim(s);
    for (const char* cmd : kCommands) {
      const std::string c = std::string(cmd) + "{";
      if (starts_with_at(s, 0, c) && matching_brace(s, c.size() - 1) == s.size() - 1) {
        s = s.substr(c.size(), s.size() - c.size() - 1);
        changed = true;
      }
    }
    if (s.size() >= 2) {
      const char f = s.front(), b = s.back();
      if ((f == '(' && b == ')') || (f == '[' && b == ']') || (f == '$' && b == '$') || (f == '{' && b == '}')) {
        s = s.substr(1, s.size() - 2);
        changed = true;
      } else if (s.size() >= 4 && starts_with_at(s, 0, "**") && starts_with_at(s, s.size() - 2, "**")) {
        s = s.substr(2, s.size() - 4);
        changed = true;
      }
    }
    if (!s.empty() && s.back() == '.' && s.size() == 2) {
      s.pop_back();
      changed = true;
    }
  }
  return s;
}

// A letter alone, or followed by '.', ')' or ':' and anything; else -1.
int letter_of(const std::string& content, int num_choices) {
  if (content.empty() || !std::isalpha(static_cast<unsigned char>(content[0]))) return -1;
  if (content.size() > 1 && content[1] != '.' && content[1] != ')' && content[1] != ':') return -1;
  const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(content[0])));
  const int index = c - 'A';
  return index < num_choices ? index : -1;
}

int last_boxed(const std::string& text, int num_choices) {
  static const std::vector<std::string> kBoxes = {"\\boxed{", "\\box{", "\\fbox{"};
  int found = -1;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') continue;
    for (const auto& box : kBoxes) {
      if (!starts_with_at(text, i, box)) continue;
      const size_t open = i + box.size() - 1;
      const size_t close = matching_brace(text, open);
      if (close == std::string::npos) break;
      const int index = letter_of(unwrap(text.substr(open + 1, close - open - 1)), num_choices);
      if (index >= 0) found = index;
      break;
    }
  }
  return found;
}

// "answer: X" or "answer is X" with decorations; the last one wins.
int last_stated(const std::string& text, int num_choices) {
  std::string lower(text.size(), ' ');
  for (size_t i = 0; i < text.size(); ++i) lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  int found = -1;
  for (size_t pos = lower.find("answer"); pos != std::string::npos; pos = lower.find("answer", pos + 1)) {
    size_t i = pos + 6;
    const auto skip = [&](const std::string& chars) {
      while (i < text.size() && chars.find(text[i]) != std::string::npos) ++i;
    };
    skip(" *");
    if (starts_with_at(lower, i, "is")) {
      i += 2;
    } else if (i < text.size() && text[i] == ':') {
      ++i;
    } else {
      continue;
    }
    skip(" *");
    if (starts_with_at(lower, i, "option ")) i += 7;
    skip(" *([$");
    if (i >= text.size()) continue;
    // The letter must stand alone: "answer is A." but not "answer is Actually".
    const bool alone = i + 1 >= text.size() || !std::isalnum(static_cast<unsigned char>(text[i + 1]));
    if (!alone || !std::isupper(static_cast<unsigned char>(text[i]))) continue;
    const int index = text[i] - 'A';
    if (index < num_choices) found = index;
  }
  return found;
}

}  // namespace

ParsedAnswer parse_answer(const std::string& completion, int num_choices) {
  ParsedAnswer parsed;
  int index = last_boxed(completion, num_choices);
  parsed.boxed = index >= 0;
  if (index < 0) index = last_stated(completion, num_choices);
  if (index >= 0) {
    parsed.index = index;
    parsed.letter = std::string(1, static_cast<char>('A' + index));
  }
  return parsed;
}

int answer_label(const ParsedAnswer& parsed, int correct_index) {
  if (parsed.index < 0) return -1;
  return parsed.index == correct_index ? 1 : 0;
}

}  // namespace gpujob::io
