#include "gpujob/text/added_vocabulary.hpp"

#include <algorithm>

#include <unicode/uchar.h>

#include "gpujob/text/utf8.hpp"

namespace gpujob::text {

namespace {
// Rust's char::is_alphanumeric, which HF uses for single_word boundaries.
bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
  int8_t type = u_charType(static_cast<UChar32>(c));
  return u_isUAlphabetic(static_cast<UChar32>(c)) || type == U_DECIMAL_DIGIT_NUMBER || type == U_LETTER_NUMBER ||
         type == U_OTHER_NUMBER;
}

char32_t last_code_point(std::string_view text, std::size_t end) {
  std::size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  std::size_t p = start;
  return next_code_point(text, p);
}
}  // namespace

AddedVocabulary::AddedVocabulary(const std::vector<AddedToken>& tokens, bool normalized_set) : by_first_(256) {
  for (const AddedToken& t : tokens)
    if (t.normalized == normalized_set && !t.content.empty()) tokens_.push_back(t);
  std::stable_sort(tokens_.begin(), tokens_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    by_first_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(static_cast<int>(i));
    first_byte_[static_cast<unsigned char>(tokens_[i].content[0])] = true;
  }
}

std::vector<TextSegment> AddedVocabulary::split(std::string_view text) const {
  std::vector<TextSegment> out;
  if (tokens_.empty()) {
    if (!text.empty()) out.push_back({0, text.size(), -1});
    return out;
  }
  std::size_t start_offset = 0;  // end of the previous accepted token
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {  // most bytes start no token
      ++pos;
      continue;
    }
    const auto& bucket = by_first_[static_cast<unsigned char>(text[pos])];
    const AddedToken* hit = nullptr;
    for (int i : bucket) {  // longest first: the first that matches is the leftmost-longest
      const std::string& c = tokens_[i].content;
      if (text.compare(pos, c.size(), c) == 0) {
        hit = &tokens_[i];
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    std::size_t start = pos, stop = pos + hit->content.size();
    pos = stop;  // the search resumes after the match, accepted or not
    if (hit->single_word) {
      bool start_ok = start == 0 || !is_word_char(last_code_point(text, start));
      std::size_t p = stop;
      bool stop_ok = stop == text.size() || !is_word_char(next_code_point(text, p));
      if (!start_ok || !stop_ok) continue;
    }
    if (hit->lstrip) {
      std::size_t s = start;
      while (s > 0) {
        std::size_t b = s - 1;
        while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
        std::size_t p = b;
        if (!is_unicode_white_space(next_code_point(text, p))) break;
        s = b;
      }
      start = std::max(s, start_offset);
    }
    if (hit->rstrip) {
      while (stop < text.size()) {
        std::size_t p = stop;
        if (!is_unicode_white_space(next_code_point(text, p))) break;
        stop = p;
      }
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, hit->id});
    start_offset = stop;
    pos = std::max(pos, stop);
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
  return out;
}

}  // namespace gpujob::text
