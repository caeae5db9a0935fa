#include "gpujob/text/normalizer.hpp"

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "gpujob/text/regex.hpp"
#include "gpujob/text/utf8.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::text {

namespace {
const UNormalizer2* icu_normalizer(const std::string& form) {
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* n = nullptr;
  if (form == "NFC") n = unorm2_getNFCInstance(&status);
  else if (form == "NFD") n = unorm2_getNFDInstance(&status);
  else if (form == "NFKC") n = unorm2_getNFKCInstance(&status);
  else if (form == "NFKD") n = unorm2_getNFKDInstance(&status);
  GPUJOB_CHECK(n && U_SUCCESS(status), "Unicode normalizer ", form, " is not available: ", u_errorName(status));
  return n;
}

std::u16string to_utf16(std::string_view text) {
  std::u16string out(text.size() + 1, u'\0');
  int32_t len = 0;
  UErrorCode status = U_ZERO_ERROR;
  u_strFromUTF8WithSub(reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()), &len,
                       text.data(), static_cast<int32_t>(text.size()), 0xFFFD, nullptr, &status);
  GPUJOB_CHECK(U_SUCCESS(status), "UTF-8 to UTF-16 conversion failed: ", u_errorName(status));
  out.resize(len);
  return out;
}

std::string to_utf8(const std::u16string& text) {
  std::string out(text.size() * 3 + 1, '\0');
  int32_t len = 0;
  UErrorCode status = U_ZERO_ERROR;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &len, reinterpret_cast<const UChar*>(text.data()),
              static_cast<int32_t>(text.size()), &status);
  GPUJOB_CHECK(U_SUCCESS(status), "UTF-16 to UTF-8 conversion failed: ", u_errorName(status));
  out.resize(len);
  return out;
}

bool is_ascii(std::string_view text) {
  for (unsigned char c : text)
    if (c >= 0x80) return false;
  return true;
}

std::string replace_all(std::string_view text, const std::string& from, const std::string& to) {
  if (from.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (true) {
    std::size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out += to;
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}
}  // namespace

std::string unicode_normalize(std::string_view text, const std::string& form) {
  const UNormalizer2* n = icu_normalizer(form);
  if (is_ascii(text)) return std::string(text);  // ASCII is invariant under every form
  std::u16string in = to_utf16(text);
  UErrorCode status = U_ZERO_ERROR;
  // Most text is already normalized: check first, which avoids a copy and a second pass.
  if (unorm2_isNormalized(n, reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()), &status) &&
      U_SUCCESS(status))
    return std::string(text);
  status = U_ZERO_ERROR;
  std::u16string out(in.size() * 4 + 16, u'\0');
  int32_t len = unorm2_normalize(n, reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()),
                                 reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()), &status);
  GPUJOB_CHECK(U_SUCCESS(status), "Unicode ", form, " normalization failed: ", u_errorName(status));
  out.resize(len);
  return to_utf8(out);
}

std::unique_ptr<Normalizer> Normalizer::from_json(const nlohmann::json& spec, const std::string& where) {
  std::unique_ptr<Normalizer> n(new Normalizer());
  if (!spec.is_null()) n->add(spec, where);
  return n;
}

Normalizer::~Normalizer() = default;

void Normalizer::add(const nlohmann::json& spec, const std::string& where) {
  const std::string type = spec.value("type", "");
  if (type == "Sequence") {
    for (const auto& s : spec.at("normalizers")) add(s, where);
  } else if (type == "NFC") {
    steps_.push_back({Kind::kNfc, "", "", nullptr});
  } else if (type == "NFD") {
    steps_.push_back({Kind::kNfd, "", "", nullptr});
  } else if (type == "NFKC") {
    steps_.push_back({Kind::kNfkc, "", "", nullptr});
  } else if (type == "NFKD") {
    steps_.push_back({Kind::kNfkd, "", "", nullptr});
  } else if (type == "Lowercase") {
    steps_.push_back({Kind::kLowercase, "", "", nullptr});
  } else if (type == "Replace") {
    Step s{Kind::kReplace, "", spec.at("content").get<std::string>(), nullptr};
    const auto& pattern = spec.at("pattern");
    if (pattern.contains("String")) s.from = pattern["String"].get<std::string>();
    else s.pattern = std::make_shared<Regex>(pattern.at("Regex").get<std::string>());
    steps_.push_back(std::move(s));
  } else if (type == "Prepend") {
    steps_.push_back({Kind::kPrepend, "", spec.at("prepend").get<std::string>(), nullptr});
  } else if (type == "Strip") {
    Step s{Kind::kStrip, "", "", nullptr};
    s.left = spec.value("strip_left", false);
    s.right = spec.value("strip_right", false);
    steps_.push_back(std::move(s));
  } else {
    fail(where, ": normalizer type '", type,
         "' is not supported (expected NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip or Sequence)");
  }
}

std::string Normalizer::normalize(std::string_view input) const {
  std::string text(input);
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Kind::kNfc: text = unicode_normalize(text, "NFC"); break;
      case Kind::kNfd: text = unicode_normalize(text, "NFD"); break;
      case Kind::kNfkc: text = unicode_normalize(text, "NFKC"); break;
      case Kind::kNfkd: text = unicode_normalize(text, "NFKD"); break;
      case Kind::kLowercase: {
        std::u16string in = to_utf16(text), out(in.size() * 3 + 8, u'\0');
        UErrorCode status = U_ZERO_ERROR;
        int32_t len = u_strToLower(reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()),
                                   reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()), "",
                                   &status);
        GPUJOB_CHECK(U_SUCCESS(status), "lowercasing failed: ", u_errorName(status));
        out.resize(len);
        text = to_utf8(out);
        break;
      }
      case Kind::kReplace:
        if (s.pattern) {
          std::string out;
          std::size_t pos = 0;
          for (auto [b, e] : s.pattern->find_all(text)) {
            out.append(text, pos, b - pos);
            out += s.to;
            pos = e;
          }
          out.append(text, pos, std::string::npos);
          text = std::move(out);
        } else {
          text = replace_all(text, s.from, s.to);
        }
        break;
      case Kind::kPrepend:
        if (!text.empty()) text = s.to + text;  // HF leaves empty pieces alone
        break;
      case Kind::kStrip: {
        std::size_t b = 0, e = text.size();
        if (s.left) {
          while (b < e) {
            std::size_t p = b;
            if (!is_unicode_white_space(next_code_point(text, p))) break;
            b = p;
          }
        }
        if (s.right) {
          while (e > b) {
            std::size_t start = e - 1;
            while (start > b && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
            std::size_t p = start;
            if (!is_unicode_white_space(next_code_point(text, p))) break;
            e = start;
          }
        }
        text = text.substr(b, e - b);
        break;
      }
    }
  }
  return text;
}

}  // namespace gpujob::text
