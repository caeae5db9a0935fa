#include "gpujob/text/word_patterns.hpp"

#include <unicode/uchar.h>

#include "gpujob/text/utf8.hpp"

namespace gpujob::text {

namespace {
const std::string kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const std::string kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum Class : unsigned char { kLetter, kNumber, kNewline, kSpace, kOther };

Class classify(char32_t c) {
  if (c < 0x80) {
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return kLetter;
    if (c >= '0' && c <= '9') return kNumber;
    if (c == '\n' || c == '\r') return kNewline;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return kSpace;
    return kOther;
  }
  if (is_unicode_white_space(c)) return kSpace;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return kLetter;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return kNumber;
    default:
      return kOther;
  }
}

struct Char {
  char32_t cp;
  Class cls;
  std::size_t offset;  // byte offset in the text
};

// Length in characters of a contraction ('s 't 're 've 'm 'll 'd) at i, 0 if none.
std::size_t contraction(const std::vector<Char>& s, std::size_t i, bool ignore_case) {
  if (s[i].cp != '\'' || i + 1 >= s.size()) return 0;
  auto lower = [&](std::size_t k) -> char32_t {
    if (k >= s.size()) return 0;
    char32_t c = s[k].cp;
    if (!ignore_case) return c;
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x17F) return 's';  // LATIN SMALL LETTER LONG S folds to s
    return c;
  };
  char32_t a = lower(i + 1), b = lower(i + 2);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if ((a == 'r' || a == 'v') && b == 'e') return 3;
  if (a == 'l' && b == 'l') return 3;
  return 0;
}
}  // namespace

std::optional<WordPattern> recognize_word_pattern(const std::string& regex) {
  if (regex == kGpt2) return WordPattern::kGpt2;
  if (regex == kLlama3) return WordPattern::kLlama3;
  if (regex == kQwen2) return WordPattern::kQwen2;
  return std::nullopt;
}

const std::string& gpt2_word_regex() { return kGpt2; }

void find_words(WordPattern pattern, std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& out) {
  std::vector<Char> s;
  s.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t start = pos;
    char32_t cp = next_code_point(text, pos);
    s.push_back({cp, classify(cp), start});
  }
  const std::size_t n = s.size();
  auto offset = [&](std::size_t k) { return k < n ? s[k].offset : text.size(); };
  auto run = [&](std::size_t k, auto&& pred) {
    while (k < n && pred(s[k].cls)) ++k;
    return k;
  };
  auto is_space = [](Class c) { return c == kSpace || c == kNewline; };
  auto is_letter = [](Class c) { return c == kLetter; };
  auto is_number = [](Class c) { return c == kNumber; };
  auto is_other = [](Class c) { return c == kOther; };
  const bool gpt2 = pattern == WordPattern::kGpt2;

  std::size_t i = 0;
  while (i < n) {
    std::size_t end = i;
    if (std::size_t c = contraction(s, i, !gpt2)) {
      end = i + c;
    } else if (gpt2) {
      // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' (the space is U+0020 only)
      std::size_t j = (s[i].cp == ' ' && i + 1 < n) ? i + 1 : i;
      if (s[j].cls == kLetter) end = run(j, is_letter);
      else if (s[j].cls == kNumber) end = run(j, is_number);
      else if (s[j].cls == kOther) end = run(j, is_other);
      else if (s[i].cls == kLetter) end = run(i, is_letter);
    } else {
      // '[^\r\n\p{L}\p{N}]?\p{L}+'
      if (s[i].cls == kLetter) {
        end = run(i, is_letter);
      } else if (s[i].cls != kNewline && s[i].cls != kNumber && i + 1 < n && s[i + 1].cls == kLetter) {
        end = run(i + 1, is_letter);
      } else if (s[i].cls == kNumber) {  // '\p{N}{1,3}' or '\p{N}'
        std::size_t limit = pattern == WordPattern::kLlama3 ? 3 : 1;
        end = i + 1;
        while (end < n && end - i < limit && s[end].cls == kNumber) ++end;
      } else {
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        std::size_t j = (s[i].cp == ' ' && i + 1 < n && s[i + 1].cls == kOther) ? i + 1 : i;
        if (s[j].cls == kOther) {
          end = run(run(j, is_other), [](Class c) { return c == kNewline; });
        } else {
          // '\s*[\r\n]+': through the last newline of the whitespace run
          std::size_t ws_end = run(i, is_space);
          for (std::size_t k = ws_end; k > i; --k) {
            if (s[k - 1].cls == kNewline) {
              end = k;
              break;
            }
          }
        }
      }
    }
    if (end == i && is_space(s[i].cls)) {
      // '\s+(?!\S)' then '\s+': a run followed by a non-space gives back its last character
      std::size_t ws_end = run(i, is_space);
      end = (ws_end < n && ws_end - i > 1) ? ws_end - 1 : ws_end;
    }
    if (end == i) end = i + 1;  // cannot happen with these patterns; guards against a stall
    out.emplace_back(offset(i), offset(end));
    i = end;
  }
}

}  // namespace gpujob::text
