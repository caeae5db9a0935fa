// SpeculativeThinking: trigger handling, keyword counting, recap schedule and cache bookkeeping.
#include "gpujob/model/speculative_thinking.hpp"

#include "gpujob/util/error.hpp"

#include <algorithm>
#include <cctype>

namespace gpujob::model {

namespace {

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::vector<std::string> lowercase_all(std::vector<std::string> words) {
  for (std::string& w : words) w = lowercase(w);
  return words;
}

// Non-overlapping occurrences, as Python's str.count.
int64_t count_occurrences(const std::string& text, const std::string& word) {
  if (word.empty()) return 0;
  int64_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + word.size())) ++n;
  return n;
}

uint64_t mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

void validate_spec_params(const SpecThinkingParams& p) {
  GPUJOB_CHECK(!p.trigger_tokens.empty(), "spec.trigger_tokens: expected at least one trigger string");
  for (const std::string& t : p.trigger_tokens) GPUJOB_CHECK(!t.empty(), "spec.trigger_tokens: empty trigger string");
  GPUJOB_CHECK(p.max_target_tokens >= 1, "spec.max_target_tokens: expected >= 1, found ", p.max_target_tokens);
  GPUJOB_CHECK(p.recap_after_negative_num >= 0, "spec.recap_after_negative_num: expected >= 0, found ",
               p.recap_after_negative_num);
  GPUJOB_CHECK(p.original_recap_token_num >= 1, "spec.original_recap_token_num: expected >= 1, found ",
               p.original_recap_token_num);
  GPUJOB_CHECK(p.add_each_recap >= 0, "spec.add_each_recap: expected >= 0, found ", p.add_each_recap);
  GPUJOB_CHECK(p.max_recap_token_num >= p.original_recap_token_num, "spec.max_recap_token_num: expected >= ",
               "original_recap_token_num = ", p.original_recap_token_num, ", found ", p.max_recap_token_num);
  GPUJOB_CHECK(p.add_each_neg >= 0, "spec.add_each_neg: expected >= 0, found ", p.add_each_neg);
  GPUJOB_CHECK(p.max_negative_num >= p.recap_after_negative_num, "spec.max_negative_num: expected >= ",
               "recap_after_negative_num = ", p.recap_after_negative_num, ", found ", p.max_negative_num);
  GPUJOB_CHECK(!p.begin || p.begin_token_num >= 1, "spec.begin_token_num: expected >= 1 with begin: true, found ",
               p.begin_token_num);
  GPUJOB_CHECK(!p.help_recap_ids.empty(), "spec.help_recap_words: expected a non-empty text");
  GPUJOB_CHECK(p.small_segment_tokens >= 1, "speculative thinking: small_segment_tokens: expected >= 1, found ",
               p.small_segment_tokens);
}

int keyword_sentiment(const std::string& text, const std::vector<std::string>& positive_words,
                      const std::vector<std::string>& negative_words) {
  const std::string lower = lowercase(text);
  int64_t positive = 0;
  int64_t negative = 0;
  for (const std::string& w : positive_words) positive += count_occurrences(lower, w);
  for (const std::string& w : negative_words) negative += count_occurrences(lower, w);
  if (positive > negative) return 1;
  if (negative > positive) return -1;
  return positive > 0 ? -1 : 0;  // a tie with hits is negative
}

bool contains_keyword(const std::string& text, const std::vector<std::string>& words) {
  const std::string lower = lowercase(text);
  return std::any_of(words.begin(), words.end(),
                     [&](const std::string& w) { return !w.empty() && lower.find(w) != std::string::npos; });
}

const char* spec_event_name(SpecEventKind kind) {
  switch (kind) {
    case SpecEventKind::kSmallSegment: return "small_segment";
    case SpecEventKind::kDraft: return "draft";
    case SpecEventKind::kLargeRewrite: return "large_rewrite";
    case SpecEventKind::kRecap: return "recap";
    case SpecEventKind::kVerifyExtension: return "verify_extension";
    case SpecEventKind::kBegin: return "begin";
    case SpecEventKind::kInserted: return "inserted";
    case SpecEventKind::kAlone: return "alone";
  }
  return "?";
}

double SpecThinkingResult::large_model_ratio() const {
  return tokens.empty() ? 0.0 : static_cast<double>(large_tokens) / static_cast<double>(tokens.size());
}

uint64_t small_stream_key(uint64_t stream_key) { return mix(stream_key ^ 0x736d616c6cULL); }
uint64_t large_stream_key(uint64_t stream_key) { return mix(stream_key ^ 0x6c61726765ULL); }

SpeculativeThinking::SpeculativeThinking(SequenceModel& small, SequenceModel& large, DecodeFn decode,
                                         SpecThinkingParams params)
    : small_(small), large_(large), decode_(std::move(decode)), params_(std::move(params)) {
  validate_spec_params(params_);
  GPUJOB_CHECK(static_cast<bool>(decode_), "SpeculativeThinking: a decode function is required");
  params_.positive_words = lowercase_all(params_.positive_words);
  params_.negative_words = lowercase_all(params_.negative_words);
  params_.verify_words = lowercase_all(params_.verify_words);
}

namespace {

// The state of one run: the shared sequence and what each model holds of it.
class Run {
 public:
  Run(SequenceModel& small, SequenceModel& large, const std::vector<int64_t>& prompt, int64_t max_tokens,
      const SamplingParams& sampling, uint64_t stream_key)
      : small_(small), large_(large), prompt_length_(static_cast<int64_t>(prompt.size())),
        max_tokens_(max_tokens), sequence_(prompt) {
    GPUJOB_CHECK(!prompt.empty(), "speculative thinking: empty prompt");
    GPUJOB_CHECK(max_tokens >= 1, "speculative thinking: max_tokens must be >= 1, found ", max_tokens);
    small_request_.sampling = sampling;
    small_request_.stream_key = small_stream_key(stream_key);
    large_request_.sampling = sampling;
    large_request_.stream_key = large_stream_key(stream_key);
    small_.reset(prompt);
    large_.reset(prompt);
  }

  int64_t generated() const { return static_cast<int64_t>(sequence_.size()) - prompt_length_; }
  int64_t remaining() const { return max_tokens_ - generated(); }
  int64_t length() const { return static_cast<int64_t>(sequence_.size()); }
  bool is_small(const SequenceModel& m) const { return &m == &small_; }

  // Brings `model` up to the shared sequence (it only prefills what it lacks) and lets it write up
  // to `max_new` tokens (capped by the length limit). The tokens are not yet part of the output.
  GenerateResult write(SequenceModel& model, int64_t max_new, const std::vector<std::string>& stops) {
    const int64_t held = model.length();
    GPUJOB_CHECK(held <= length(), "speculative thinking: a model holds ", held, " tokens, the sequence ", length());
    if (held < length()) model.append({sequence_.begin() + held, sequence_.end()});
    GenerateRequest& request = is_small(model) ? small_request_ : large_request_;
    request.max_new_tokens = std::min(max_new, remaining());
    request.stop_strings = stops;
    GenerateResult out = model.generate(request);
    request.first_step += static_cast<int64_t>(out.tokens.size());
    return out;
  }

  // Makes tokens written by a model (or inserted) part of the output.
  void commit(const std::vector<int64_t>& tokens) { sequence_.insert(sequence_.end(), tokens.begin(), tokens.end()); }

  // Throws away what `model` wrote past `prefix` tokens (its cache rolls back).
  static void roll_back(SequenceModel& model, int64_t prefix) {
    if (model.length() > prefix) model.truncate(prefix);
  }

  std::vector<int64_t> output() const { return {sequence_.begin() + prompt_length_, sequence_.end()}; }

 private:
  SequenceModel& small_;
  SequenceModel& large_;
  int64_t prompt_length_;
  int64_t max_tokens_;
  std::vector<int64_t> sequence_;  // prompt + output, as both models will hold it
  GenerateRequest small_request_;
  GenerateRequest large_request_;
};

}  // namespace

SpecThinkingResult SpeculativeThinking::run(const std::vector<int64_t>& prompt, int64_t max_tokens,
                                            const SamplingParams& sampling, uint64_t stream_key) {
  Run run(small_, large_, prompt, max_tokens, sampling, stream_key);
  SpecThinkingResult result;
  const std::vector<std::string> no_stops;
  int64_t negative_count = 0;
  int64_t recap_token_num = params_.original_recap_token_num;
  int64_t recap_after = params_.recap_after_negative_num;
  bool begin = params_.begin;

  auto event = [&](SpecEventKind kind, int64_t position, int64_t tokens, bool kept, int sentiment = 0) {
    result.events.push_back(SpecEvent{kind, position, tokens, kept, sentiment});
  };
  auto insert = [&](const std::vector<int64_t>& tokens) {
    if (tokens.empty()) return;
    event(SpecEventKind::kInserted, run.generated(), static_cast<int64_t>(tokens.size()), true);
    run.commit(tokens);
    result.inserted_tokens += static_cast<int64_t>(tokens.size());
  };
  // The large model writes `count` tokens into the output; returns false when the run ends.
  auto large_writes = [&](SpecEventKind kind, int64_t count) {
    const int64_t position = run.generated();
    GenerateResult out = run.write(large_, count, no_stops);
    run.commit(out.tokens);
    result.large_tokens += static_cast<int64_t>(out.tokens.size());
    event(kind, position, static_cast<int64_t>(out.tokens.size()), true);
    result.eos = out.eos;
    return !out.eos && run.remaining() > 0;
  };

  bool going = true;
  if (begin) going = large_writes(SpecEventKind::kBegin, params_.begin_token_num);
  while (going) {
    // The small model writes up to a trigger.
    const int64_t segment_at = run.generated();
    GenerateResult segment = run.write(small_, params_.small_segment_tokens, params_.trigger_tokens);
    run.commit(segment.tokens);
    result.small_tokens += static_cast<int64_t>(segment.tokens.size());
    event(SpecEventKind::kSmallSegment, segment_at, static_cast<int64_t>(segment.tokens.size()), true);
    result.eos = segment.eos;
    if (segment.eos || run.remaining() <= 0) break;
    const bool triggered = segment.reason == FinishReason::kStop;
    if (!triggered) continue;  // the segment limit: the small model goes on

    if (negative_count >= recap_after) {
      // Enough negative drafts: ask the large model for a recap; the schedule then grows.
      insert(params_.help_recap_ids);
      negative_count = 0;
      ++result.recaps;
      const int64_t recap_tokens = recap_token_num;
      recap_token_num = std::min(recap_token_num + params_.add_each_recap, params_.max_recap_token_num);
      recap_after = std::min(recap_after + params_.add_each_neg, params_.max_negative_num);
      if (run.remaining() <= 0) break;
      going = large_writes(SpecEventKind::kRecap, recap_tokens);
      continue;
    }

    insert(params_.help_think_ids);
    if (run.remaining() <= 0) break;
    const int64_t draft_at = run.generated();
    const int64_t prefix = run.length();  // both models go back here if their text is thrown away
    GenerateResult draft = run.write(small_, params_.max_target_tokens, no_stops);
    const std::string draft_text = decode_(draft.tokens);
    const int draft_sentiment = keyword_sentiment(draft_text, params_.positive_words, params_.negative_words);
    ++result.drafts;
    const auto draft_size = static_cast<int64_t>(draft.tokens.size());
    if (draft_sentiment == 0) {
      // A neutral draft is dropped; the small model continues from before it.
      Run::roll_back(small_, prefix);
      ++result.neutral_drafts;
      result.discarded_small_tokens += draft_size;
      event(SpecEventKind::kDraft, draft_at, draft_size, false, 0);
      continue;
    }

    GenerateResult rewrite = run.write(large_, params_.max_target_tokens, no_stops);
    const std::string rewrite_text = decode_(rewrite.tokens);
    const int rewrite_sentiment = keyword_sentiment(rewrite_text, params_.positive_words, params_.negative_words);
    const auto rewrite_size = static_cast<int64_t>(rewrite.tokens.size());
    const bool take_large = params_.choose_large || (draft_sentiment < 0 && rewrite_sentiment >= 0) ||
                            (draft_sentiment > 0 && rewrite_sentiment < 0);
    event(SpecEventKind::kDraft, draft_at, draft_size, !take_large, draft_sentiment);
    event(SpecEventKind::kLargeRewrite, draft_at, rewrite_size, take_large, rewrite_sentiment);
    const GenerateResult& kept = take_large ? rewrite : draft;
    if (take_large) {
      Run::roll_back(small_, prefix);
      result.large_tokens += rewrite_size;
      result.discarded_small_tokens += draft_size;
    } else {
      Run::roll_back(large_, prefix);
      result.small_tokens += draft_size;
      result.discarded_large_tokens += rewrite_size;
    }
    run.commit(kept.tokens);
    const int kept_sentiment = take_large ? rewrite_sentiment : draft_sentiment;
    if (kept_sentiment < 0) {
      ++negative_count;
      ++result.negative_drafts;
    }
    result.eos = kept.eos;
    if (kept.eos || run.remaining() <= 0) break;
    if (contains_keyword(take_large ? rewrite_text : draft_text, params_.verify_words)) {
      ++result.verify_extensions;
      going = large_writes(SpecEventKind::kVerifyExtension, params_.original_recap_token_num);
    }
  }
  result.tokens = run.output();
  return result;
}

SpecThinkingResult generate_alone(SequenceModel& model, const std::vector<int64_t>& prompt, int64_t max_tokens,
                                  const SamplingParams& sampling, uint64_t stream_key, bool is_large) {
  GPUJOB_CHECK(!prompt.empty(), "generate: empty prompt");
  GPUJOB_CHECK(max_tokens >= 1, "generate: max_tokens must be >= 1, found ", max_tokens);
  model.reset(prompt);
  GenerateRequest request;
  request.max_new_tokens = max_tokens;
  request.sampling = sampling;
  request.stream_key = is_large ? large_stream_key(stream_key) : small_stream_key(stream_key);
  GenerateResult out = model.generate(request);
  SpecThinkingResult result;
  result.tokens = out.tokens;
  result.eos = out.eos;
  (is_large ? result.large_tokens : result.small_tokens) = static_cast<int64_t>(out.tokens.size());
  result.events.push_back(SpecEvent{SpecEventKind::kAlone, 0,
                                    static_cast<int64_t>(out.tokens.size()), true, 0});
  return result;
}

}  // namespace gpujob::model
