#include "gpujob/model/stop_conditions.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "gpujob/util/error.hpp"

namespace gpujob::model {

namespace {

// Appends the ids of `value` (an int or a list of ints) that `ids` does not hold yet.
void add_eos_ids(const nlohmann::json& value, const std::string& source, std::vector<int64_t>& ids) {
  auto add = [&](const nlohmann::json& v) {
    GPUJOB_CHECK(v.is_number_integer(), source, ": eos_token_id: expected an int or a list of ints, found ",
                 v.dump());
    int64_t id = v.get<int64_t>();
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  if (value.is_null()) return;
  if (value.is_array()) {
    for (const auto& v : value) add(v);
  } else {
    add(value);
  }
}

void add_eos_ids_from_file(const std::filesystem::path& path, std::vector<int64_t>& ids) {
  if (!std::filesystem::exists(path)) return;
  std::ifstream in(path);
  GPUJOB_CHECK(in, path.string(), ": cannot open for reading");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path.string(), ": invalid JSON: ", e.what());
  }
  GPUJOB_CHECK(doc.is_object(), path.string(), ": expected a JSON object");
  if (doc.contains("eos_token_id")) {
    add_eos_ids(doc["eos_token_id"], path.string(), ids);
  } else if (doc.contains("text_config") && doc["text_config"].is_object() &&
             doc["text_config"].contains("eos_token_id")) {
    add_eos_ids(doc["text_config"]["eos_token_id"], path.string() + " text_config", ids);
  }
}

bool ends_with_incomplete_character(const std::string& text) {
  static const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD, what decoders emit for partial UTF-8
  return text.size() >= kReplacement.size() &&
         text.compare(text.size() - kReplacement.size(), kReplacement.size(), kReplacement) == 0;
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kNone: break;
  }
  return "";
}

FinishReason parse_finish_reason(const std::string& name) {
  if (name == "stop") return FinishReason::kStop;
  if (name == "length") return FinishReason::kLength;
  fail("finish reason \"", name, "\": expected \"stop\" or \"length\"");
}

void validate_stop_conditions(const StopConditions& stop) {
  GPUJOB_CHECK(stop.max_new_tokens >= 1, "generation.max_new_tokens: expected >= 1, found ",
               stop.max_new_tokens);
  for (const std::string& s : stop.stop_strings)
    GPUJOB_CHECK(!s.empty(), "generation.stop: expected non-empty strings, found \"\"");
}

std::vector<int64_t> read_eos_token_ids(const std::string& model_dir) {
  std::vector<int64_t> ids;
  add_eos_ids_from_file(std::filesystem::path(model_dir) / "config.json", ids);
  add_eos_ids_from_file(std::filesystem::path(model_dir) / "generation_config.json", ids);
  return ids;
}

StopChecker::StopChecker(const StopConditions& stop, DecodeFn decode)
    : stop_(stop), decode_(std::move(decode)) {
  validate_stop_conditions(stop_);
  GPUJOB_CHECK(stop_.stop_strings.empty() || decode_,
               "generation.stop: stop strings need a tokenizer to decode the completion, and the model has none");
  for (const std::string& s : stop_.stop_strings) max_stop_length_ = std::max(max_stop_length_, s.size());
}

void StopChecker::decode_new_text(bool flush) {
  // Decoding [prefix_offset_, end) and [prefix_offset_, read_offset_) from the same first token makes
  // their difference the new text, whatever the tokenizer does at the start of a decode.
  std::vector<int64_t> window(ids_.begin() + prefix_offset_, ids_.end());
  std::vector<int64_t> known(ids_.begin() + prefix_offset_, ids_.begin() + read_offset_);
  std::string prefix_text = known.empty() ? std::string() : decode_(known);
  std::string new_text = decode_(window);
  if (new_text.size() <= prefix_text.size()) return;
  if (!flush && ends_with_incomplete_character(new_text)) return;  // wait for the rest of the character
  text_.append(new_text, prefix_text.size(), std::string::npos);
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
}

bool StopChecker::find_stop_string(size_t search_from) {
  size_t best = std::string::npos;
  for (const std::string& s : stop_.stop_strings) {
    size_t at = text_.find(s, search_from);
    if (at < best) best = at;
  }
  if (best == std::string::npos) return false;
  stop_at_ = best;
  return true;
}

FinishReason StopChecker::append(int64_t token) {
  GPUJOB_CHECK(reason_ == FinishReason::kNone, "StopChecker: token appended after the completion finished (",
               finish_reason_name(reason_), ")");
  ids_.push_back(token);
  const bool is_eos = !stop_.ignore_eos && std::find(stop_.eos_token_ids.begin(), stop_.eos_token_ids.end(),
                                                     token) != stop_.eos_token_ids.end();
  if (!stop_.stop_strings.empty() && !is_eos) {
    size_t before = text_.size();
    decode_new_text(/*flush=*/false);
    // A match must end in the new text, so it starts at most max_stop_length_ - 1 bytes before it.
    size_t search_from = before >= max_stop_length_ ? before - max_stop_length_ + 1 : 0;
    if (text_.size() > before && find_stop_string(search_from)) reason_ = FinishReason::kStop;
  }
  if (reason_ == FinishReason::kNone) {
    if (is_eos) {
      reason_ = FinishReason::kStop;
    } else if (static_cast<int64_t>(ids_.size()) >= stop_.max_new_tokens) {
      reason_ = FinishReason::kLength;
    }
  }
  if (reason_ != FinishReason::kNone && decode_ && stop_at_ == std::string::npos) {
    if (stop_.stop_strings.empty()) {
      text_ = decode_(ids_);
    } else {
      decode_new_text(/*flush=*/true);
    }
  }
  return reason_;
}

std::string StopChecker::text() const {
  if (stop_at_ != std::string::npos) return text_.substr(0, stop_at_);
  return text_;
}

}  // namespace gpujob::model
