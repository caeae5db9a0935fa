#include "gpujob/text/regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "gpujob/util/error.hpp"

namespace gpujob::text {

namespace {
std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// One match-data block per thread and pattern size: allocating one per call costs more than a
// short match.
struct MatchData {
  pcre2_match_data* data = nullptr;
  ~MatchData() {
    if (data) pcre2_match_data_free(data);
  }
};
}  // namespace

Regex::Regex(const std::string& pattern, bool literal) : pattern_(pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  // PCRE2_LITERAL admits no UCP (nothing in a literal depends on character classes).
  uint32_t options = literal ? (PCRE2_UTF | PCRE2_NO_UTF_CHECK | PCRE2_LITERAL) : (PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK);
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                             &error, &offset, nullptr);
  GPUJOB_CHECK(code != nullptr, "tokenizer regex /", pattern, "/ does not compile at offset ", offset,
               ": ", pcre2_message(error));
  code_ = code;
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

std::vector<std::pair<std::size_t, std::size_t>> Regex::find_all(std::string_view text) const {
  thread_local MatchData match;
  if (!match.data) match.data = pcre2_match_data_create(32, nullptr);
  auto* code = static_cast<pcre2_code*>(code_);
  std::vector<std::pair<std::size_t, std::size_t>> out;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t start = 0;
  while (start <= text.size()) {
    // Input was checked to be valid UTF-8 by the caller (HF strings always are).
    int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, match.data, nullptr)
                  : pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, match.data, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    GPUJOB_CHECK(rc >= 0, "tokenizer regex /", pattern_, "/ failed: ", pcre2_message(rc));
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match.data);
    std::size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.emplace_back(b, e);
      start = e;
    } else {
      // Empty match: step over one code point, as the Rust regex iterator does.
      if (b >= text.size()) break;
      std::size_t step = 1;
      while (b + step < text.size() && (static_cast<unsigned char>(text[b + step]) & 0xC0) == 0x80) ++step;
      start = b + step;
    }
  }
  return out;
}

}  // namespace gpujob::text
