// Generator: continuous batching against a one-prompt-at-a-time reference on a fake model, slot
// refill, reproducibility across batch sizes and orders, stop conditions, KV cache planning, and
// greedy tokens identical to HF generate on the golden checkpoints.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpujob/model/decoder.hpp"
#include "gpujob/model/decoder_slot_model.hpp"
#include "gpujob/model/generator.hpp"
#include "gpujob/model/safetensors.hpp"
#include "gpujob/util/error.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::model;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kVocab = 16;
constexpr int64_t kEos = 3;

// Logits of the fake model: a deterministic function of the whole token history (prompt and
// generated), so a slot mix-up or a stale cache changes the output.
std::vector<float> fake_logits(const std::vector<int64_t>& history) {
  uint64_t h = 1469598103934665603ull;
  for (int64_t t : history) h = (h ^ static_cast<uint64_t>(t + 1)) * 1099511628211ull;
  std::vector<float> out(kVocab);
  for (int64_t v = 0; v < kVocab; ++v) {
    uint64_t x = (h + static_cast<uint64_t>(v) * 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 29)) * 0xBF58476D1CE4E5B9ull;
    out[v] = static_cast<float>((x >> 40) % 1000) / 250.0f;  // [0, 4)
  }
  return out;
}

// A SlotModel over fake_logits that keeps each slot's history as its "cache", checks the contract
// (capacity, reset before reuse) and logs every call.
class FakeModel : public SlotModel {
 public:
  struct Call {
    std::vector<int64_t> slots;
    std::vector<int64_t> sizes;  // new tokens per slot
    bool prefill = true;         // every slot of the call was empty before it
  };

  FakeModel(int64_t n_slots, int64_t max_len) : max_len_(max_len), history_(n_slots) {}
  int64_t n_slots() const override { return static_cast<int64_t>(history_.size()); }
  int64_t max_len() const override { return max_len_; }
  void reset(int64_t slot) override { history_.at(slot).clear(); }
  at::Tensor forward(const std::vector<int64_t>& slots,
                     const std::vector<std::vector<int64_t>>& new_tokens) override {
    REQUIRE(slots.size() == new_tokens.size());
    at::Tensor logits = at::empty({static_cast<int64_t>(slots.size()), kVocab}, at::kFloat);
    Call call;
    for (size_t i = 0; i < slots.size(); ++i) {
      auto& h = history_.at(slots[i]);
      call.prefill = call.prefill && h.empty();
      h.insert(h.end(), new_tokens[i].begin(), new_tokens[i].end());
      REQUIRE(static_cast<int64_t>(h.size()) <= max_len_);
      std::vector<float> row = fake_logits(h);
      for (int64_t v = 0; v < kVocab; ++v) logits[i][v] = row[v];
      call.slots.push_back(slots[i]);
      call.sizes.push_back(static_cast<int64_t>(new_tokens[i].size()));
    }
    calls.push_back(call);
    return logits;
  }

  std::vector<Call> calls;

 private:
  int64_t max_len_;
  std::vector<std::vector<int64_t>> history_;
};

std::string letters(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids)
    if (id != kEos) s += static_cast<char>('a' + id);
  return s;
}

// One prompt at a time with plain loops: the generator must agree with this.
Completion reference_generation(const GenerationRequest& request, const GeneratorOptions& options) {
  Sampler sampler(options.sampling);
  StopChecker checker(options.stop, options.decode);
  std::vector<int64_t> history = request.prompt_ids;
  while (true) {
    std::vector<float> row = fake_logits(history);
    at::Tensor logits = at::tensor(row, at::kFloat).view({1, kVocab});
    int64_t token =
        sampler.sample(logits, {request.stream_key}, {static_cast<int64_t>(checker.ids().size())})[0].item<int64_t>();
    history.push_back(token);
    if (checker.append(token) != FinishReason::kNone) break;
  }
  return Completion{checker.ids(), checker.text(), checker.finish_reason()};
}

std::vector<GenerationRequest> make_requests(int n) {
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < n; ++i) {
    GenerationRequest r;
    for (int k = 0; k < 1 + (i * 5) % 9; ++k) r.prompt_ids.push_back((i * 7 + k * 3) % kVocab);
    r.stream_key = stream_key_for_id("prompt-" + std::to_string(i));
    requests.push_back(r);
  }
  return requests;
}

GeneratorOptions options_with(SamplingParams sampling, int64_t max_new_tokens) {
  GeneratorOptions o;
  o.sampling = sampling;
  o.stop.eos_token_ids = {kEos};
  o.stop.max_new_tokens = max_new_tokens;
  o.decode = letters;
  return o;
}

void check_same(const std::vector<Completion>& got, const std::vector<Completion>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("request " << i);
    CHECK(got[i].ids == want[i].ids);
    CHECK(got[i].text == want[i].text);
    CHECK(got[i].finish_reason == want[i].finish_reason);
  }
}

}  // namespace

TEST_CASE("continuous batching equals one prompt at a time, greedy and sampled", "[generator]") {
  const auto requests = make_requests(23);
  for (const SamplingParams& sampling :
       {SamplingParams{}, SamplingParams{0.8, 8, 0.95, 0.0, 11}, SamplingParams{1.2, 0, 1.0, 0.05, 12}}) {
    GeneratorOptions options = options_with(sampling, 12);
    std::vector<Completion> want;
    for (const auto& r : requests) want.push_back(reference_generation(r, options));
    // The cases must exercise both endings, or the refill paths go untested.
    int stops = 0, lengths = 0;
    for (const auto& c : want) (c.finish_reason == FinishReason::kStop ? stops : lengths)++;
    INFO("temperature " << sampling.temperature);
    REQUIRE(stops > 0);
    REQUIRE(lengths > 0);
    for (int64_t n_slots : {1, 2, 7, 30}) {
      FakeModel model(n_slots, 8 + 12);
      Generator generator(model, options);
      INFO("slots " << n_slots);
      check_same(generator.generate(requests), want);
    }
  }
}

TEST_CASE("sampled completions do not depend on request order or prefill grouping", "[generator]") {
  auto requests = make_requests(17);
  GeneratorOptions options = options_with(SamplingParams{1.0, 0, 0.9, 0.0, 5}, 10);
  FakeModel model(4, 20);
  std::vector<Completion> forward_order = Generator(model, options).generate(requests);

  std::vector<size_t> perm(requests.size());
  std::iota(perm.begin(), perm.end(), 0);
  std::reverse(perm.begin(), perm.end());
  std::swap(perm[2], perm[9]);
  std::vector<GenerationRequest> shuffled;
  for (size_t p : perm) shuffled.push_back(requests[p]);
  options.max_prefill_tokens = 9;  // prefill in small groups this time
  FakeModel model2(3, 20);
  std::vector<Completion> got = Generator(model2, options).generate(shuffled);
  for (size_t i = 0; i < perm.size(); ++i) {
    INFO("request " << perm[i]);
    CHECK(got[i].ids == forward_order[perm[i]].ids);
  }
  for (const auto& call : model2.calls) {
    int64_t longest = *std::max_element(call.sizes.begin(), call.sizes.end());
    if (call.sizes.size() > 1) CHECK(longest * static_cast<int64_t>(call.sizes.size()) <= 9);
  }
}

namespace {

// What the device of a LimitedDeviceModel holds in one call before it runs out of memory.
struct DeviceLimits {
  int64_t prefill_tokens = std::numeric_limits<int64_t>::max();    // padded prompt tokens
  int64_t decode_sequences = std::numeric_limits<int64_t>::max();  // sequences of one decode step
};

// A FakeModel on a small device. A prefill over the limit first appends part of its tokens (as a
// real forward writes some layers' cache before it fails), then throws libtorch's out-of-memory
// message; a decode step (one token per slot) over the limit throws at once.
class LimitedDeviceModel : public FakeModel {
 public:
  LimitedDeviceModel(int64_t n_slots, int64_t max_len, DeviceLimits limits)
      : FakeModel(n_slots, max_len), limits_(limits) {}
  at::Tensor forward(const std::vector<int64_t>& slots,
                     const std::vector<std::vector<int64_t>>& new_tokens) override {
    int64_t longest = 0;
    for (const auto& t : new_tokens) longest = std::max(longest, static_cast<int64_t>(t.size()));
    const int64_t n = static_cast<int64_t>(slots.size());
    if (longest > 1 && n * longest > limits_.prefill_tokens) {
      ++failures;
      FakeModel::forward({slots.front()}, {new_tokens.front()});  // partial work before the failure
      throw std::runtime_error("CUDA out of memory. Tried to allocate 20.00 MiB");
    }
    if (longest == 1 && n > limits_.decode_sequences) {
      ++failures;
      throw std::runtime_error("CUDA out of memory. Tried to allocate 64.00 MiB");
    }
    return FakeModel::forward(slots, new_tokens);
  }
  int failures = 0;

 private:
  DeviceLimits limits_;
};

}  // namespace

TEST_CASE("a prefill that runs out of device memory is retried in halves; nothing changes", "[generator]") {
  const auto requests = make_requests(23);
  GeneratorOptions options = options_with(SamplingParams{0.8, 8, 0.95, 0.0, 11}, 12);
  FakeModel roomy(8, 20);
  const std::vector<Completion> want = Generator(roomy, options).generate(requests);

  LimitedDeviceModel small(8, 20, {20, std::numeric_limits<int64_t>::max()});
  Generator generator(small, options);
  check_same(generator.generate(requests), want);
  // The first refill (8 prompts of up to 9 tokens: 72 padded) fails, then its halves are tried
  // until they fit: a few failures, not one per later call.
  CHECK(small.failures >= 1);
  CHECK(small.failures <= 3);

  // One prompt alone that does not fit is an error, not a loop.
  LimitedDeviceModel tiny(2, 20, {3, std::numeric_limits<int64_t>::max()});
  std::vector<GenerationRequest> long_prompt(1);
  long_prompt[0].prompt_ids = {1, 2, 4, 5, 6};
  CHECK_THROWS_WITH(Generator(tiny, options).generate(long_prompt), Catch::Contains("out of memory"));
}

TEST_CASE("a decode step that runs out of device memory decodes fewer sequences; nothing changes", "[generator]") {
  const auto requests = make_requests(23);
  for (const SamplingParams& sampling : {SamplingParams{}, SamplingParams{0.8, 8, 0.95, 0.0, 11}}) {
    INFO("temperature " << sampling.temperature);
    GeneratorOptions options = options_with(sampling, 12);
    std::vector<Completion> want;
    for (const auto& r : requests) want.push_back(reference_generation(r, options));

    LimitedDeviceModel model(8, 20, {std::numeric_limits<int64_t>::max(), 3});
    check_same(Generator(model, options).generate(requests), want);
    CHECK(model.failures >= 1);
    CHECK(model.failures <= 2);  // 8 -> 4 -> 2 sequences at once, then never again
    for (const auto& call : model.calls) {
      if (!call.prefill) CHECK(call.slots.size() <= 3);
    }
  }
  // One sequence alone that does not fit is an error, not a loop.
  LimitedDeviceModel none(2, 20, {std::numeric_limits<int64_t>::max(), 0});
  std::vector<GenerationRequest> one(1);
  one[0].prompt_ids = {1, 2};
  CHECK_THROWS_WITH(Generator(none, options_with(SamplingParams{}, 5)).generate(one), Catch::Contains("out of memory"));
}

TEST_CASE("a finished sequence's slot takes the next prompt at once", "[generator]") {
  const auto requests = make_requests(40);
  GeneratorOptions options = options_with(SamplingParams{}, 9);
  const int64_t n_slots = 5;
  FakeModel model(n_slots, 20);
  std::vector<Completion> results = Generator(model, options).generate(requests);
  int stops = 0;
  int64_t one_token = 0;
  for (const auto& c : results) {
    stops += c.finish_reason == FinishReason::kStop;
    one_token += c.ids.size() == 1;
  }
  REQUIRE(stops >= 5);  // completions end at different steps
  // Until the last prompt is prefilled, every decode call covers every slot: no slot idles while
  // prompts wait. The only exception is a prompt whose first token ended it, which frees its slot
  // between its prefill and the decode call that follows.
  size_t last_prefill = 0;
  for (size_t c = 0; c < model.calls.size(); ++c)
    if (model.calls[c].prefill) last_prefill = c;
  int64_t decode_calls = 0, short_calls = 0;
  for (size_t c = 0; c < last_prefill; ++c) {
    if (model.calls[c].prefill) continue;
    ++decode_calls;
    if (static_cast<int64_t>(model.calls[c].slots.size()) < n_slots) ++short_calls;
  }
  CHECK(decode_calls > 20);
  CHECK(short_calls <= one_token);
  // Every slot served several prompts.
  std::map<int64_t, int> prefills_per_slot;
  for (const auto& call : model.calls)
    if (call.prefill)
      for (int64_t slot : call.slots) ++prefills_per_slot[slot];
  CHECK(static_cast<int64_t>(prefills_per_slot.size()) == n_slots);
  for (const auto& [slot, n] : prefills_per_slot) CHECK(n >= 3);
}

TEST_CASE("stop strings end completions in the generator", "[generator]") {
  const auto requests = make_requests(9);
  GeneratorOptions plain = options_with(SamplingParams{}, 12);
  FakeModel model(3, 20);
  std::vector<Completion> base = Generator(model, plain).generate(requests);
  // Stop on two letters from the middle of request 4's completion.
  REQUIRE(base[4].text.size() >= 5);
  const std::string stop = base[4].text.substr(2, 2);
  GeneratorOptions with_stop = plain;
  with_stop.stop.stop_strings = {stop};
  FakeModel model2(3, 20);
  std::vector<Completion> got = Generator(model2, with_stop).generate(requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    INFO("request " << i << " stop \"" << stop << "\" base text " << base[i].text);
    size_t at = base[i].text.find(stop);
    if (at == std::string::npos) {
      CHECK(got[i].ids == base[i].ids);
      continue;
    }
    CHECK(got[i].finish_reason == FinishReason::kStop);
    CHECK(got[i].text == base[i].text.substr(0, at));
    // Tokens are letters here, so the completing token is the stop string's last letter.
    CHECK(got[i].ids.size() == at + stop.size());
  }
  CHECK(got[4].text.size() == base[4].text.find(stop));
}

TEST_CASE("progress reports tokens and prompts", "[generator]") {
  const auto requests = make_requests(6);
  GeneratorOptions options = options_with(SamplingParams{}, 7);
  std::vector<GenerationProgress> seen;
  options.progress = [&](const GenerationProgress& p) { seen.push_back(p); };
  FakeModel model(2, 20);
  auto results = Generator(model, options).generate(requests);
  int64_t tokens = 0;
  for (const auto& c : results) tokens += static_cast<int64_t>(c.ids.size());
  REQUIRE(!seen.empty());
  CHECK(seen.back().tokens_generated == tokens);
  CHECK(seen.back().prompts_done == 6);
  CHECK(seen.back().prompts_total == 6);
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i].tokens_generated > seen[i - 1].tokens_generated);
}

TEST_CASE("a prompt that does not fit a slot is a clear error", "[generator]") {
  GeneratorOptions options = options_with(SamplingParams{}, 10);
  FakeModel model(2, 12);
  std::vector<GenerationRequest> requests(2);
  requests[0].prompt_ids = {1, 2, 3};  // needs 3 + 10 - 1 = 12: fits exactly
  requests[1].prompt_ids = {1, 2, 3, 4};
  CHECK_THROWS_WITH(Generator(model, options).generate(requests),
                    Catch::Contains("prompt 1 has 4 tokens") && Catch::Contains("needs 13 positions"));
  requests.pop_back();
  CHECK(Generator(model, options).generate(requests).size() == 1);
}

TEST_CASE("a slot holds the prompt and every generated token but the last", "[generator]") {
  CHECK(slot_positions_needed(5, 10) == 14);
}

TEST_CASE("greedy tokens equal HF generate on every golden checkpoint", "[generator][golden]") {
  const char* source = std::getenv("GPUJOB_SOURCE_DIR");
  fs::path root = fs::path(source ? source : ".") / "tests/data/models";
  if (!fs::exists(root)) {
    WARN("no golden data under " << root.string() << ": skipped");
    return;
  }
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    fs::path dir = entry.path();
    if (!fs::exists(dir / "golden.json") || !fs::exists(dir / "golden.safetensors")) continue;
    std::ifstream in(dir / "golden.json");
    nlohmann::json golden = nlohmann::json::parse(in);
    const int64_t n = golden.at("num_sequences").get<int64_t>();
    const int64_t max_new = golden.at("max_new_tokens").get<int64_t>();
    SafetensorsFile tensors((dir / "golden.safetensors").string());
    if (!tensors.contains("greedy.0")) continue;
    ++cases;
    std::vector<GenerationRequest> requests;
    std::vector<std::vector<int64_t>> want;
    int64_t longest = 0;
    for (int64_t i = 0; i < n; ++i) {
      at::Tensor ids = tensors.view("input_ids." + std::to_string(i)).to(at::kLong).contiguous();
      at::Tensor greedy = tensors.view("greedy." + std::to_string(i)).to(at::kLong).contiguous();
      GenerationRequest r;
      r.prompt_ids.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
      requests.push_back(r);
      want.emplace_back(greedy.data_ptr<int64_t>(), greedy.data_ptr<int64_t>() + greedy.numel());
      longest = std::max<int64_t>(longest, ids.numel());
    }
    std::unique_ptr<Decoder> decoder = Decoder::load(dir.string(), LoadOptions{});
    GeneratorOptions options;
    options.stop.max_new_tokens = max_new;
    options.stop.eos_token_ids = read_eos_token_ids(dir.string());
    std::vector<int64_t> golden_eos = golden.at("eos_token_ids").get<std::vector<int64_t>>();
    for (int64_t id : golden_eos) {
      INFO(dir.filename().string() << ": eos id " << id << " of golden.json");
      CHECK(std::find(options.stop.eos_token_ids.begin(), options.stop.eos_token_ids.end(), id) !=
            options.stop.eos_token_ids.end());
    }
    // Per-call decode steps, and steps over every slot (the CUDA-graph shape, run eagerly here).
    for (const SlotDecode mode : {SlotDecode::kPerCall, SlotDecode::kAllSlots})
    for (int64_t n_slots : {1, 2, 7}) {
      DecoderSlotModel model(*decoder, n_slots, slot_positions_needed(longest, max_new), mode);
      std::vector<Completion> got = Generator(model, options).generate(requests);
      for (int64_t i = 0; i < n; ++i) {
        INFO(dir.filename().string() << " prompt " << i << " (" << requests[i].prompt_ids.size()
                                     << " tokens), " << n_slots << " slots"
                                     << (mode == SlotDecode::kAllSlots ? ", all-slot steps" : ""));
        CHECK(got[i].ids == want[i]);
      }
      if (mode == SlotDecode::kAllSlots && 2 * std::min(n, n_slots) >= n_slots) CHECK(model.all_slot_steps() > 0);
    }
  }
  if (cases == 0) WARN("no golden greedy data under " << root.string() << ": skipped");
}
