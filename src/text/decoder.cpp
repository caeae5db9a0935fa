#include "gpujob/text/decoder.hpp"

#include <cstdlib>

#include "gpujob/text/byte_level.hpp"
#include "gpujob/text/utf8.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::text {

namespace {
std::string replace_all(const std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  std::string out;
  std::size_t pos = 0;
  while (true) {
    std::size_t hit = text.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(text, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(text, pos, std::string::npos);
  return out;
}

// The byte of a "<0xXX>" token, or -1.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}
}  // namespace

std::unique_ptr<Decoder> Decoder::from_json(const nlohmann::json& spec, const std::string& where) {
  std::unique_ptr<Decoder> d(new Decoder());
  if (!spec.is_null()) {
    d->null_ = false;
    d->add(spec, where);
  }
  return d;
}

Decoder::~Decoder() = default;

void Decoder::add(const nlohmann::json& spec, const std::string& where) {
  const std::string type = spec.value("type", "");
  Step s{};
  if (type == "Sequence") {
    for (const auto& sub : spec.at("decoders")) add(sub, where);
    return;
  } else if (type == "ByteLevel") {
    s.kind = Kind::kByteLevel;
  } else if (type == "Replace") {
    s.kind = Kind::kReplace;
    const auto& pattern = spec.at("pattern");
    GPUJOB_CHECK(pattern.contains("String"), where, ": decoder Replace with a regex pattern is not supported");
    s.from = pattern["String"].get<std::string>();
    s.to = spec.at("content").get<std::string>();
  } else if (type == "ByteFallback") {
    s.kind = Kind::kByteFallback;
  } else if (type == "Fuse") {
    s.kind = Kind::kFuse;
  } else if (type == "Strip") {
    s.kind = Kind::kStrip;
    s.content = spec.at("content").get<std::string>();
    s.start = spec.value("start", 0);
    s.stop = spec.value("stop", 0);
  } else if (type == "Metaspace") {
    s.kind = Kind::kMetaspace;
    s.from = spec.value("replacement", "\xE2\x96\x81");
    if (spec.contains("prepend_scheme")) s.prepend = spec["prepend_scheme"].get<std::string>() != "never";
    else s.prepend = spec.value("add_prefix_space", true);
  } else {
    fail(where, ": decoder type '", type,
         "' is not supported (expected ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace or Sequence)");
  }
  steps_.push_back(std::move(s));
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  if (null_) {  // HF joins with spaces when there is no decoder
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Kind::kByteLevel: {
        // Tokens made only of stand-ins become their bytes; any other token (an added token
        // such as "Hello there") passes as its own UTF-8. The whole is then read lossily.
        std::string bytes;
        for (const std::string& t : tokens) {
          std::string mapped;
          bool all = true;
          for (std::size_t pos = 0; pos < t.size() && all;) {
            int b = unicode_to_byte(next_code_point(t, pos));
            if (b < 0) all = false;
            else mapped.push_back(static_cast<char>(b));
          }
          bytes += all ? mapped : t;
        }
        tokens.assign(1, utf8_lossy(bytes));
        break;
      }
      case Kind::kReplace:
        for (auto& t : tokens) t = replace_all(t, s.from, s.to);
        break;
      case Kind::kByteFallback: {
        std::vector<std::string> out;
        std::string pending;  // bytes of consecutive <0xXX> tokens
        std::size_t pending_count = 0;
        auto flush = [&]() {
          if (pending_count == 0) return;
          if (is_valid_utf8(pending)) {
            out.push_back(pending);
          } else {  // HF emits one U+FFFD per byte token when the bytes are not valid UTF-8
            for (std::size_t i = 0; i < pending_count; ++i) out.push_back("\xEF\xBF\xBD");
          }
          pending.clear();
          pending_count = 0;
        };
        for (auto& t : tokens) {
          int b = byte_token(t);
          if (b >= 0) {
            pending.push_back(static_cast<char>(b));
            ++pending_count;
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        tokens = std::move(out);
        break;
      }
      case Kind::kFuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, all);
        break;
      }
      case Kind::kStrip:
        for (auto& t : tokens) {
          int start = 0;
          while (start < s.start && t.compare(start * s.content.size(), s.content.size(), s.content) == 0) ++start;
          t.erase(0, start * s.content.size());
          int stop = 0;
          while (stop < s.stop && t.size() >= (stop + 1) * s.content.size() &&
                 t.compare(t.size() - (stop + 1) * s.content.size(), s.content.size(), s.content) == 0)
            ++stop;
          t.resize(t.size() - stop * s.content.size());
        }
        break;
      case Kind::kMetaspace:
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          std::string t = replace_all(tokens[i], s.from, " ");
          if (i == 0 && s.prepend && !t.empty() && t[0] == ' ') t.erase(0, 1);
          tokens[i] = std::move(t);
        }
        break;
    }
  }
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

}  // namespace gpujob::text
