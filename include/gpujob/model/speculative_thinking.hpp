// SpeculativeThinking: a small model reasons, a large model takes over at reflection points.
#pragma once

#include "gpujob/model/sequence_model.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace gpujob::model {

// The algorithm's settings, with the original implementation's names (its YAML keys).
struct SpecThinkingParams {
  std::vector<std::string> trigger_tokens = {"\n\n"};  // small-model text that ends a segment (a hand-off point)
  int64_t max_target_tokens = 20;         // tokens of a draft, and of the large model's rewrite of it
  int64_t recap_after_negative_num = 15;  // negative drafts before a recap (the threshold grows)
  int64_t original_recap_token_num = 125; // large-model tokens of the first recap and of each verify extension
  int64_t add_each_recap = 25;            // recap length increment after each recap
  int64_t max_recap_token_num = 200;      // recap length cap
  int64_t add_each_neg = 5;               // threshold increment after each recap
  int64_t max_negative_num = 30;          // threshold cap
  // Keyword lists (matched case-insensitively as substrings, counted with repeats). A draft's
  // sentiment counts positive_words against negative_words, which hold the original's negative and
  // verify lists together; verify_words alone decide the verify extension.
  std::vector<std::string> positive_words = {"yeah", "yes", "final answer", "confident"};
  std::vector<std::string> negative_words = {"wait", "alternatively", "hold on", "another",
                                             "verify", "think again", "recap", "check"};
  std::vector<std::string> verify_words = {"verify", "think again", "recap", "check"};
  bool choose_large = true;        // a non-neutral draft is always replaced by the large model's text
  bool begin = false;              // the large model writes the first begin_token_num tokens
  int64_t begin_token_num = 100;
  std::vector<int64_t> help_recap_ids;  // tokens of help_recap_words, inserted before a recap
  std::vector<int64_t> help_think_ids;  // tokens of help_think_word (optional), inserted before a draft
  int64_t small_segment_tokens = 1024;  // most tokens per small-model call between triggers (as the original)
};

// Throws a one-line gpujob::Error naming the `spec.*` key when a setting is out of range.
void validate_spec_params(const SpecThinkingParams& params);

// Sentiment of a draft: +1 when positive words outnumber negative ones, -1 when negative words do
// or when both counts are equal and non-zero (a tie with hits counts as negative), 0 without hits.
int keyword_sentiment(const std::string& text, const std::vector<std::string>& positive_words,
                      const std::vector<std::string>& negative_words);
// True when the lowercased text contains one of the (lowercase) words.
bool contains_keyword(const std::string& text, const std::vector<std::string>& words);

enum class SpecEventKind {
  kSmallSegment,     // the small model wrote up to a trigger, EOS or its segment limit
  kDraft,            // the small model drafted max_target_tokens at a trigger
  kLargeRewrite,     // the large model wrote max_target_tokens from the draft's prefix
  kRecap,            // help_recap_words were inserted and the large model wrote the recap
  kVerifyExtension,  // the kept text had a verify word: the large model wrote more
  kBegin,            // the large model wrote the opening
  kInserted,         // help_recap_words / help_think_word tokens, written by neither model
  kAlone,            // one model wrote the whole completion (modes large and small)
};
const char* spec_event_name(SpecEventKind kind);

// One step of a run, in order; the hand-off trace the tests check.
struct SpecEvent {
  SpecEventKind kind = SpecEventKind::kSmallSegment;
  int64_t position = 0;   // generated tokens (prompt excluded) before this step's tokens
  int64_t tokens = 0;     // tokens written by this step
  bool kept = true;       // in the output (drafts and rewrites can be thrown away)
  int sentiment = 0;      // kDraft / kLargeRewrite: keyword_sentiment of their text
};

struct SpecThinkingResult {
  std::vector<int64_t> tokens;            // the output: generated tokens, prompt excluded
  int64_t small_tokens = 0;               // output tokens written by the small model
  int64_t large_tokens = 0;               // output tokens written by the large model
  int64_t inserted_tokens = 0;            // output tokens of help words
  int64_t discarded_small_tokens = 0;     // drafted then thrown away (rolled back)
  int64_t discarded_large_tokens = 0;     // written by the large model then thrown away
  int64_t drafts = 0;                     // drafts made at triggers
  int64_t neutral_drafts = 0;             // of which had no keyword (dropped)
  int64_t negative_drafts = 0;            // kept texts counted negative
  int64_t recaps = 0;
  int64_t verify_extensions = 0;
  bool eos = false;                       // ended at EOS (else at the length limit)
  std::vector<SpecEvent> events;

  int64_t generated() const { return static_cast<int64_t>(tokens.size()); }
  // Share of the output written by the large model, from tokens actually written.
  double large_model_ratio() const;
};

// Runs the algorithm over two models that follow the same sequence. Both start from the prompt;
// tokens one model writes are appended to the other before it writes again, and thrown-away
// drafts are truncated away, so each model's cache always holds a prefix of the output.
class SpeculativeThinking {
 public:
  // `decode` turns tokens into text (skipping special tokens) for keyword counting. The models
  // and the function must outlive this object.
  SpeculativeThinking(SequenceModel& small, SequenceModel& large, DecodeFn decode, SpecThinkingParams params);

  // One completion of at most max_tokens generated tokens (the prompt does not count).
  // stream_key selects the random streams (one for each model).
  SpecThinkingResult run(const std::vector<int64_t>& prompt, int64_t max_tokens, const SamplingParams& sampling,
                         uint64_t stream_key);

  const SpecThinkingParams& params() const { return params_; }

 private:
  SequenceModel& small_;
  SequenceModel& large_;
  DecodeFn decode_;
  SpecThinkingParams params_;  // keyword lists lowercased
};

// One model alone (the benchmark's `large` and `small` modes): writes up to max_tokens tokens or
// until EOS in one generate call. `is_large` decides which count the tokens go to.
SpecThinkingResult generate_alone(SequenceModel& model, const std::vector<int64_t>& prompt, int64_t max_tokens,
                                  const SamplingParams& sampling, uint64_t stream_key, bool is_large);

// The stream keys the two models draw from for a run's stream_key (distinct, so the small model's
// continuation after a dropped draft is a fresh draw, as in the original).
uint64_t small_stream_key(uint64_t stream_key);
uint64_t large_stream_key(uint64_t stream_key);

}  // namespace gpujob::model
