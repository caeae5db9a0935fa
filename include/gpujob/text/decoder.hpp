// HF tokenizer.json decoders (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence):
// turn a list of token strings back into text.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpujob::text {

class Decoder {
 public:
  // From the "decoder" object of tokenizer.json (null: tokens joined with spaces, as HF does).
  static std::unique_ptr<Decoder> from_json(const nlohmann::json& spec, const std::string& where);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  std::string decode(std::vector<std::string> tokens) const;

 private:
  Decoder() = default;
  enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
  struct Step {
    Kind kind;
    std::string from, to;     // Replace; Metaspace (from = replacement)
    std::string content;      // Strip
    int start = 0, stop = 0;  // Strip: characters removed at each end
    bool prepend = true;      // Metaspace: a replacement was prepended to the first word
  };
  void add(const nlohmann::json& spec, const std::string& where);
  std::vector<Step> steps_;
  bool null_ = true;
};

}  // namespace gpujob::text
