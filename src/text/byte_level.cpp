#include "gpujob/text/byte_level.hpp"

#include "gpujob/text/utf8.hpp"

namespace gpujob::text {

namespace {
struct Tables {
  std::array<std::string, 256> to_unicode;
  std::array<std::array<char, 2>, 256> utf8;  // every stand-in is one or two UTF-8 bytes
  std::array<unsigned char, 256> utf8_length;
  std::array<int, 324> to_byte;  // stand-ins are below U+0144
  Tables() {
    to_byte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      append_utf8(to_unicode[b], cp);
      to_byte[cp] = b;
      utf8_length[b] = static_cast<unsigned char>(to_unicode[b].size());
      for (std::size_t k = 0; k < to_unicode[b].size(); ++k) utf8[b][k] = to_unicode[b][k];
    }
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}
}  // namespace

const std::array<std::string, 256>& byte_to_unicode() { return tables().to_unicode; }

void byte_level_encode(std::string_view bytes, std::string& out) {
  const Tables& t = tables();
  std::size_t pos = out.size();
  out.resize(pos + bytes.size() * 2);
  for (unsigned char b : bytes) {
    out[pos] = t.utf8[b][0];
    out[pos + 1] = t.utf8[b][1];
    pos += t.utf8_length[b];
  }
  out.resize(pos);
}

int unicode_to_byte(char32_t cp) {
  return cp < tables().to_byte.size() ? tables().to_byte[cp] : -1;
}

}  // namespace gpujob::text
