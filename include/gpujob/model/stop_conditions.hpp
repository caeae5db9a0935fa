// Stop conditions of a completion: EOS ids, stop strings, max_new_tokens, and its finish reason.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gpujob::model {

// Why a completion ended. kNone while it is running.
enum class FinishReason {
  kNone,
  kStop,    // an EOS id was generated, or the text came to contain a stop string
  kLength,  // max_new_tokens were generated
};

// "stop", "length" (the OpenAI / vLLM names), "" for kNone.
const char* finish_reason_name(FinishReason reason);
// The reverse of finish_reason_name; throws on any other text.
FinishReason parse_finish_reason(const std::string& name);

struct StopConditions {
  std::vector<int64_t> eos_token_ids;     // generating any of these ends the completion (kept in it)
  std::vector<std::string> stop_strings;  // the completion ends once its text contains one
  int64_t max_new_tokens = 256;           // tokens per completion, >= 1
  bool ignore_eos = false;                // benchmarks: EOS ids do not stop (stop strings still do)
};

// Throws a one-line gpujob::Error naming the `generation.*` key when a setting is invalid.
void validate_stop_conditions(const StopConditions& stop);

// EOS ids of a HF model directory: `eos_token_id` (an int or a list) of config.json (or of its
// `text_config`) followed by those of generation_config.json not already present. Missing files or
// keys give no ids; a value that is neither an int nor a list of ints is an error naming the file.
std::vector<int64_t> read_eos_token_ids(const std::string& model_dir);

// Decodes token ids to UTF-8 text, the way the tokenizer's decode(ids, skip_special_tokens=True)
// does. Used on short windows of a completion, so it must be a pure function of its argument.
using DecodeFn = std::function<std::string(const std::vector<int64_t>&)>;

// Follows one completion token by token and decides when it ends.
//
// Text is decoded incrementally: each step decodes a short window that starts a few tokens back (so
// tokenizers that drop a leading space at the start of a decode, and multi-byte characters split
// over tokens, come out as in a full decode) and appends the new characters once they no longer end
// in an incomplete character (U+FFFD). Stop strings are searched only where the new text can create
// a match (the new text plus the longest stop string's length before it).
//
// Conventions (those of HF's stop_strings and vLLM):
//  - an EOS id ends the completion with kStop and stays in ids(); text() does not show it (the decode
//    skips special tokens);
//  - a stop string ends it with kStop; ids() holds every token up to and including the one that
//    completed the stop string; text() is cut just before the stop string's first occurrence;
//  - reaching max_new_tokens gives kLength, unless that same token is an EOS or completes a stop
//    string (then kStop).
// Without stop strings nothing is decoded per step: the text is one decode of ids() at the end.
// Without a DecodeFn, stop strings cannot be checked (they must be empty) and text() is "".
class StopChecker {
 public:
  StopChecker(const StopConditions& stop, DecodeFn decode);

  // Records the next generated token; returns the finish reason, kNone while the completion goes on.
  // Must not be called after the completion finished.
  FinishReason append(int64_t token);

  FinishReason finish_reason() const { return reason_; }
  bool finished() const { return reason_ != FinishReason::kNone; }
  const std::vector<int64_t>& ids() const { return ids_; }
  // The completion's text: everything decoded so far (all of it once finished), cut before a
  // matched stop string.
  std::string text() const;

 private:
  void decode_new_text(bool flush);
  bool find_stop_string(size_t search_from);

  StopConditions stop_;
  DecodeFn decode_;
  std::vector<int64_t> ids_;
  std::string text_;             // decoded so far
  size_t prefix_offset_ = 0;     // first token of the decode window
  size_t read_offset_ = 0;       // tokens already turned into text_
  size_t max_stop_length_ = 0;   // bytes of the longest stop string
  size_t stop_at_ = std::string::npos;  // byte offset in text_ where a stop string starts
  FinishReason reason_ = FinishReason::kNone;
};

}  // namespace gpujob::model
