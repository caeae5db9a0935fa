// Speculative Thinking: forced trigger schedules over scripted models (hand-offs, cache positions,
// rollbacks), keyword counting, and the equal-models identity on a golden checkpoint.
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/decoder_sequence_model.hpp"
#include "gpujob/model/speculative_thinking.hpp"
#include "gpujob/util/error.hpp"
#include "model/spec_fixtures.hpp"

#include <cstdlib>
#include <deque>
#include <map>
#include <string>
#include <vector>

// After the libtorch headers: Catch2's CHECK must replace c10's (see catch.hpp).
#include "catch.hpp"

using namespace gpujob::model;

namespace {

// Token texts of the scripted models. 2 is EOS (decodes to nothing, as a skipped special token).
const std::map<int64_t, std::string> kText = {
    {1, " x"}, {2, ""}, {10, "\n\n"}, {11, " Wait"}, {12, " yes"}, {13, " check"}, {90, " Let me"}, {91, " recap:"},
};

std::string decode(const std::vector<int64_t>& tokens) {
  std::string out;
  for (int64_t t : tokens) out += kText.count(t) ? kText.at(t) : " t" + std::to_string(t);
  return out;
}

// A model that writes what its script says, call by call, and logs every operation with the
// sequence length it happened at (the KV cache position of a real model).
class ScriptedModel final : public SequenceModel {
 public:
  explicit ScriptedModel(std::string name) : name_(std::move(name)) {}

  void script(std::vector<std::vector<int64_t>> calls) { script_.assign(calls.begin(), calls.end()); }

  void reset(const std::vector<int64_t>& prompt) override {
    sequence_ = prompt;
    log.push_back("reset " + std::to_string(prompt.size()));
  }
  void append(const std::vector<int64_t>& tokens) override {
    log.push_back("append " + std::to_string(tokens.size()) + " @" + std::to_string(sequence_.size()));
    sequence_.insert(sequence_.end(), tokens.begin(), tokens.end());
  }
  GenerateResult generate(const GenerateRequest& request) override {
    REQUIRE(request.max_new_tokens >= 1);
    INFO(name_ << " has no scripted output left");
    REQUIRE(!script_.empty());
    const std::vector<int64_t> planned = script_.front();
    script_.pop_front();
    GenerateResult out;
    for (int64_t t : planned) {
      out.tokens.push_back(t);
      if (t == 2) {
        out.eos = true;
        out.reason = FinishReason::kStop;
        break;
      }
      const std::string text = decode(out.tokens);
      bool stopped = false;
      for (const std::string& s : request.stop_strings) stopped = stopped || text.find(s) != std::string::npos;
      if (stopped) {
        out.reason = FinishReason::kStop;
        break;
      }
      if (static_cast<int64_t>(out.tokens.size()) == request.max_new_tokens) break;
    }
    log.push_back("generate " + std::to_string(out.tokens.size()) + " @" + std::to_string(sequence_.size()) +
                  (request.stop_strings.empty() ? "" : " stops"));
    steps.push_back(request.first_step);
    sequence_.insert(sequence_.end(), out.tokens.begin(), out.tokens.end());
    return out;
  }
  void truncate(int64_t length) override {
    REQUIRE(length <= static_cast<int64_t>(sequence_.size()));
    log.push_back("truncate " + std::to_string(sequence_.size()) + "->" + std::to_string(length));
    sequence_.resize(static_cast<size_t>(length));
  }
  int64_t length() const override { return static_cast<int64_t>(sequence_.size()); }

  const std::vector<int64_t>& sequence() const { return sequence_; }
  bool script_done() const { return script_.empty(); }

  std::vector<std::string> log;
  std::vector<int64_t> steps;  // first_step of each generate call

 private:
  std::string name_;
  std::deque<std::vector<int64_t>> script_;
  std::vector<int64_t> sequence_;
};

SpecThinkingParams small_params() {
  SpecThinkingParams p;
  p.max_target_tokens = 3;
  p.recap_after_negative_num = 1;
  p.original_recap_token_num = 4;
  p.add_each_recap = 2;
  p.max_recap_token_num = 6;
  p.add_each_neg = 1;
  p.max_negative_num = 2;
  p.help_recap_ids = {90, 91};
  return p;
}

std::string describe(const SpecEvent& e) {
  return std::string(spec_event_name(e.kind)) + " @" + std::to_string(e.position) + " n" + std::to_string(e.tokens) +
         (e.kept ? " kept" : " dropped") + " s" + std::to_string(e.sentiment);
}

std::vector<std::string> describe(const std::vector<SpecEvent>& events) {
  std::vector<std::string> out;
  for (const SpecEvent& e : events) out.push_back(describe(e));
  return out;
}

const std::vector<int64_t> kPrompt = {100, 101, 102};

}  // namespace

TEST_CASE("keyword sentiment counts repeats, ignores case, and a tie with hits is negative") {
  const std::vector<std::string> pos = {"yes", "final answer"};
  const std::vector<std::string> neg = {"wait", "check"};
  CHECK(keyword_sentiment("so the answer is 4", pos, neg) == 0);
  CHECK(keyword_sentiment("Yes, YES.", pos, neg) == 1);
  CHECK(keyword_sentiment("Wait, let me check", pos, neg) == -1);
  CHECK(keyword_sentiment("yes, but wait", pos, neg) == -1);             // tie 1-1
  CHECK(keyword_sentiment("yes yes, but wait", pos, neg) == 1);          // 2-1
  CHECK(keyword_sentiment("The Final Answer, yes; wait", pos, neg) == 1); // 2-1
  CHECK((contains_keyword("Let me CHECK", {"check"})));
  CHECK_FALSE((contains_keyword("nothing here", {"check", "verify"})));
}

TEST_CASE("a forced trigger schedule gives the expected hand-offs, cache positions and rollbacks") {
  ScriptedModel small("small");
  ScriptedModel large("large");
  small.script({
      {1, 1, 10},   // S1 segment up to "\n\n"
      {1, 1, 1},    // S2 neutral draft: dropped
      {1, 10},      // S3 segment
      {11, 1, 1},   // S4 draft " Wait": negative
      {1, 10},      // S5 segment; the negative count has reached the threshold: recap
      {1, 10},      // S6 segment
      {12, 1, 13},  // S7 draft " yes ... check": a 1-1 tie, negative
  });
  large.script({
      {1, 11, 1},    // L1 rewrite of S4 (negative), chosen
      {1, 1, 1, 1},  // L2 recap of original_recap_token_num = 4 tokens
      {13, 1, 1},    // L3 rewrite of S7 with " check": chosen, and a verify word
      {1, 1, 2},     // L4 verify extension, ends at EOS
  });
  SpeculativeThinking spec(small, large, decode, small_params());
  SamplingParams greedy;
  SpecThinkingResult r = spec.run(kPrompt, 100, greedy, 7);

  CHECK(small.script_done());
  CHECK(large.script_done());
  const std::vector<int64_t> expected = {1, 1, 10, 1, 10, 1, 11, 1, 1, 10, 90, 91,
                                         1, 1, 1, 1, 1, 10, 13, 1, 1, 1, 1, 2};
  CHECK(r.tokens == expected);
  CHECK(r.eos);
  CHECK((describe(r.events) == std::vector<std::string>{
                                  "small_segment @0 n3 kept s0",
                                  "draft @3 n3 dropped s0",
                                  "small_segment @3 n2 kept s0",
                                  "draft @5 n3 dropped s-1",
                                  "large_rewrite @5 n3 kept s-1",
                                  "small_segment @8 n2 kept s0",
                                  "inserted @10 n2 kept s0",
                                  "recap @12 n4 kept s0",
                                  "small_segment @16 n2 kept s0",
                                  "draft @18 n3 dropped s-1",
                                  "large_rewrite @18 n3 kept s-1",
                                  "verify_extension @21 n3 kept s0",
                              }));
  // Cache positions: each model only prefills what the other wrote, and rolls back thrown-away drafts.
  CHECK((small.log == std::vector<std::string>{
                         "reset 3",
                         "generate 3 @3 stops",
                         "generate 3 @6",
                         "truncate 9->6",
                         "generate 2 @6 stops",
                         "generate 3 @8",
                         "truncate 11->8",
                         "append 3 @8",
                         "generate 2 @11 stops",
                         "append 6 @13",
                         "generate 2 @19 stops",
                         "generate 3 @21",
                         "truncate 24->21",
                     }));
  CHECK((large.log == std::vector<std::string>{
                         "reset 3",
                         "append 5 @3",
                         "generate 3 @8",
                         "append 4 @11",
                         "generate 4 @15",
                         "append 2 @19",
                         "generate 3 @21",
                         "generate 3 @24",
                     }));
  // Random streams advance by the tokens each model drew, thrown-away drafts included.
  CHECK((small.steps == std::vector<int64_t>{0, 3, 6, 8, 11, 13, 15}));
  CHECK((large.steps == std::vector<int64_t>{0, 3, 7, 10}));
  // Both models end holding a prefix of the output.
  CHECK(std::vector<int64_t>(large.sequence().begin() + 3, large.sequence().end()) == expected);
  CHECK(small.length() == 21);

  CHECK(r.large_tokens == 13);
  CHECK(r.small_tokens == 9);
  CHECK(r.inserted_tokens == 2);
  CHECK(r.large_tokens + r.small_tokens + r.inserted_tokens == r.generated());
  CHECK(r.discarded_small_tokens == 9);
  CHECK(r.discarded_large_tokens == 0);
  CHECK(r.drafts == 3);
  CHECK(r.neutral_drafts == 1);
  CHECK(r.negative_drafts == 2);
  CHECK(r.recaps == 1);
  CHECK(r.verify_extensions == 1);
  CHECK(r.large_model_ratio() == Approx(13.0 / 24.0));
}

TEST_CASE("the recap schedule grows the recap length and the threshold up to their caps") {
  ScriptedModel small("small");
  ScriptedModel large("large");
  SpecThinkingParams p = small_params();
  p.recap_after_negative_num = 0;  // the first trigger is a recap; the threshold then becomes 1 (cap 1)
  p.add_each_neg = 1;
  p.max_negative_num = 1;
  small.script({{1, 10}, {1, 10}, {11, 1, 1}, {1, 10}, {1, 10}, {1, 1, 1}, {1, 2}});
  large.script({{1, 1, 1, 1, 1, 1, 1}, {11, 1, 1}, {1, 1, 1, 1, 1, 1, 1}});
  SpeculativeThinking spec(small, large, decode, p);
  SpecThinkingResult r = spec.run(kPrompt, 100, SamplingParams{}, 1);
  CHECK(small.script_done());
  CHECK(large.script_done());
  CHECK((describe(r.events) == std::vector<std::string>{
                                  "small_segment @0 n2 kept s0",
                                  "inserted @2 n2 kept s0",
                                  "recap @4 n4 kept s0",  // original_recap_token_num
                                  "small_segment @8 n2 kept s0",
                                  "draft @10 n3 dropped s-1",  // threshold 1 not reached yet: a draft
                                  "large_rewrite @10 n3 kept s-1",
                                  "small_segment @13 n2 kept s0",
                                  "inserted @15 n2 kept s0",
                                  "recap @17 n6 kept s0",  // 4 + add_each_recap 2 = 6 (the cap)
                                  "small_segment @23 n2 kept s0",
                                  "draft @25 n3 dropped s0",  // threshold stays 1, count was reset: a draft
                                  "small_segment @25 n2 kept s0",
                              }));
  CHECK(r.recaps == 2);
  CHECK(r.eos);
}

TEST_CASE("choose_large: false keeps the draft unless the large model flips its sentiment") {
  ScriptedModel small("small");
  ScriptedModel large("large");
  SpecThinkingParams p = small_params();
  p.choose_large = false;
  p.recap_after_negative_num = 5;
  p.max_negative_num = 5;
  small.script({{1, 10}, {12, 1, 1}, {1, 10}, {11, 1, 1}, {1, 2}});
  large.script({{12, 1, 1}, {1, 1, 1}});
  SpeculativeThinking spec(small, large, decode, p);
  SpecThinkingResult r = spec.run(kPrompt, 100, SamplingParams{}, 1);
  CHECK((describe(r.events) == std::vector<std::string>{
                                  "small_segment @0 n2 kept s0",
                                  "draft @2 n3 kept s1",  // positive, the large model too: the draft stays
                                  "large_rewrite @2 n3 dropped s1",
                                  "small_segment @5 n2 kept s0",
                                  "draft @7 n3 dropped s-1",  // negative, the large model neutral: it replaces
                                  "large_rewrite @7 n3 kept s0",
                                  "small_segment @10 n2 kept s0",
                              }));
  CHECK((small.log == std::vector<std::string>{"reset 3", "generate 2 @3 stops", "generate 3 @5", "generate 2 @8 stops",
                                              "generate 3 @10", "truncate 13->10", "append 3 @10",
                                              "generate 2 @13 stops"}));
  CHECK((large.log ==
        std::vector<std::string>{"reset 3", "append 2 @3", "generate 3 @5", "truncate 8->5", "append 5 @5", "generate 3 @10"}));
  CHECK((r.tokens == std::vector<int64_t>{1, 10, 12, 1, 1, 1, 10, 1, 1, 1, 1, 2}));
  CHECK(r.small_tokens == 9);
  CHECK(r.large_tokens == 3);
  CHECK(r.discarded_large_tokens == 3);
  CHECK(r.discarded_small_tokens == 3);
  CHECK(r.negative_drafts == 0);  // the kept text was neutral
}

TEST_CASE("begin lets the large model open, and the length limit counts generated tokens only") {
  ScriptedModel small("small");
  ScriptedModel large("large");
  SpecThinkingParams p = small_params();
  p.begin = true;
  p.begin_token_num = 4;
  const std::vector<int64_t> long_prompt(50, 100);  // longer than the limit: it must not count
  large.script({{1, 1, 1, 1, 1, 1}});
  small.script({{1, 1, 1, 1, 1}});
  SpeculativeThinking spec(small, large, decode, p);
  SpecThinkingResult r = spec.run(long_prompt, 7, SamplingParams{}, 1);
  CHECK(r.generated() == 7);
  CHECK_FALSE(r.eos);
  CHECK((describe(r.events) == std::vector<std::string>{"begin @0 n4 kept s0", "small_segment @4 n3 kept s0"}));
  CHECK((large.log == std::vector<std::string>{"reset 50", "generate 4 @50"}));
  CHECK((small.log == std::vector<std::string>{"reset 50", "append 4 @50", "generate 3 @54 stops"}));
  CHECK(r.large_model_ratio() == Approx(4.0 / 7.0));
}

TEST_CASE("a segment that reaches its limit without a trigger lets the small model go on") {
  ScriptedModel small("small");
  ScriptedModel large("large");
  SpecThinkingParams p = small_params();
  p.small_segment_tokens = 2;
  small.script({{1, 1, 1}, {1, 10}, {1, 1, 1}, {1, 2}});
  SpeculativeThinking spec(small, large, decode, p);
  SpecThinkingResult r = spec.run(kPrompt, 100, SamplingParams{}, 1);
  CHECK((describe(r.events) == std::vector<std::string>{"small_segment @0 n2 kept s0", "small_segment @2 n2 kept s0",
                                                       "draft @4 n3 dropped s0", "small_segment @4 n2 kept s0"}));
  CHECK((large.log == std::vector<std::string>{"reset 3"}));  // the large model never ran
  CHECK(r.large_model_ratio() == 0.0);
  CHECK((r.tokens == std::vector<int64_t>{1, 1, 1, 10, 1, 2}));
}

TEST_CASE("invalid settings are one-line errors naming the key") {
  ScriptedModel small("small");
  ScriptedModel large("large");
  SpecThinkingParams p = small_params();
  p.max_target_tokens = 0;
  CHECK_THROWS_WITH(SpeculativeThinking(small, large, decode, p), Catch::Contains("spec.max_target_tokens"));
  p = small_params();
  p.max_recap_token_num = 1;
  CHECK_THROWS_WITH(SpeculativeThinking(small, large, decode, p), Catch::Contains("spec.max_recap_token_num"));
  p = small_params();
  p.help_recap_ids.clear();
  CHECK_THROWS_WITH(SpeculativeThinking(small, large, decode, p), Catch::Contains("spec.help_recap_words"));
}

namespace {

using gpujob::test::golden_model_dir;
using gpujob::test::synthetic_decode;

std::unique_ptr<Decoder> load_float32(const std::string& name) {
  LoadOptions o;
  o.dtype = at::kFloat;
  return Decoder::load(golden_model_dir(name), o);
}

}  // namespace

TEST_CASE("the decoder sequence model prefills lazily, rolls its cache back, and matches a fresh run") {
  auto decoder = load_float32("llama3_new");
  DecoderSequenceModel model(*decoder, 256, {2}, synthetic_decode);
  DecoderSequenceModel fresh(*decoder, 256, {2}, synthetic_decode);
  GenerateRequest greedy;
  greedy.max_new_tokens = 12;
  const std::vector<int64_t> prompt = {1, 30, 31, 32};
  model.reset(prompt);
  CHECK(model.cached_length() == 0);
  const std::vector<int64_t> first = model.generate(greedy).tokens;
  REQUIRE(first.size() == 12);
  CHECK(model.length() == 16);
  CHECK(model.cached_length() == 15);  // the last sampled token is fed at the next step

  // Appended tokens are only prefilled at the next generate.
  model.append({40, 41, 42});
  CHECK(model.cached_length() == 15);
  const std::vector<int64_t> second = model.generate(greedy).tokens;
  CHECK(model.cached_length() == model.length() - 1);

  // Rolling back to a cached position and generating again gives the same tokens as before.
  model.truncate(19);
  CHECK(model.cached_length() == 19);
  CHECK(model.generate(greedy).tokens == second);

  // ...and the same as one model that saw the whole sequence as its prompt.
  std::vector<int64_t> whole = prompt;
  whole.insert(whole.end(), first.begin(), first.end());
  whole.insert(whole.end(), {40, 41, 42});
  fresh.reset(whole);
  CHECK(fresh.generate(greedy).tokens == second);

  // Stop strings end a call at the token whose text completes one.
  GenerateRequest until_trigger = greedy;
  until_trigger.max_new_tokens = 64;
  until_trigger.stop_strings = {"\n\n"};
  fresh.reset(prompt);
  const GenerateResult r = fresh.generate(until_trigger);
  if (r.reason == FinishReason::kStop && !r.eos) {
    CHECK(r.tokens.back() % 9 == 0);
    for (size_t i = 0; i + 1 < r.tokens.size(); ++i) CHECK(r.tokens[i] % 9 != 0);
  }
}

TEST_CASE("with the draft equal to the target and greedy sampling, spec mode writes exactly the large-only output") {
  for (const char* name : {"llama3_new", "qwen3_new"}) {
    INFO("case " << name);
    auto decoder = load_float32(name);
    DecoderSequenceModel small(*decoder, 512, {2}, synthetic_decode);
    DecoderSequenceModel large(*decoder, 512, {2}, synthetic_decode);
    SpecThinkingParams p;
    p.max_target_tokens = 6;
    p.original_recap_token_num = 9;
    p.max_recap_token_num = 9;
    p.help_recap_ids = {5, 6, 7};
    p.recap_after_negative_num = 1000;  // a recap inserts help words, which the large model alone never writes
    p.max_negative_num = 1000;
    SpeculativeThinking spec(small, large, synthetic_decode, p);
    SamplingParams greedy;
    for (const std::vector<int64_t>& prompt : {std::vector<int64_t>{1, 40, 41, 42, 43}, std::vector<int64_t>{1, 200, 9}}) {
      const SpecThinkingResult alone = generate_alone(large, prompt, 200, greedy, 1, true);
      const SpecThinkingResult mixed = spec.run(prompt, 200, greedy, 1);
      CHECK(mixed.tokens == alone.tokens);
      CHECK(mixed.drafts > 0);  // control did pass back and forth
      CHECK(mixed.large_tokens > 0);
      CHECK(mixed.small_tokens > 0);
      CHECK(mixed.large_tokens + mixed.small_tokens == mixed.generated());
    }
  }
}
