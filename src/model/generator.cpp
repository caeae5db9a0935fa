#include "gpujob/model/generator.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>

#include "gpujob/model/decoder.hpp"
#include "gpujob/model/device.hpp"
#include "gpujob/model/oom_backoff.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::model {

int64_t slot_positions_needed(int64_t prompt_tokens, int64_t max_new_tokens) {
  return prompt_tokens + max_new_tokens - 1;
}

namespace {

// One occupied slot: which request it serves and how far that completion has got.
struct Active {
  int64_t request = -1;
  std::optional<StopChecker> checker;
};

}  // namespace

Generator::Generator(SlotModel& model, GeneratorOptions options)
    : model_(model), options_(std::move(options)), sampler_(options_.sampling),
      prefill_limit_(options_.max_prefill_tokens), active_limit_(model.n_slots()) {
  validate_stop_conditions(options_.stop);
  GPUJOB_CHECK(options_.stop.stop_strings.empty() || options_.decode,
               "generation.stop: stop strings need a tokenizer to decode the completion, and the model has none");
  GPUJOB_CHECK(model_.n_slots() >= 1, "generator: the KV cache has no slots");
}

std::vector<Completion> Generator::generate(const std::vector<GenerationRequest>& requests) {
  const int64_t n_requests = static_cast<int64_t>(requests.size());
  for (int64_t i = 0; i < n_requests; ++i) {
    const int64_t len = static_cast<int64_t>(requests[i].prompt_ids.size());
    GPUJOB_CHECK(len >= 1, "generator: prompt ", i, " has no tokens");
    const int64_t needed = slot_positions_needed(len, options_.stop.max_new_tokens);
    GPUJOB_CHECK(needed <= model_.max_len(), "generator: prompt ", i, " has ", len, " tokens; with max_new_tokens ",
                 options_.stop.max_new_tokens, " a slot needs ", needed, " positions but holds ", model_.max_len());
  }

  std::vector<Completion> results(requests.size());
  std::vector<Active> slots(static_cast<size_t>(model_.n_slots()));
  std::deque<int64_t> queue;
  for (int64_t i = 0; i < n_requests; ++i) queue.push_back(i);
  GenerationProgress progress;
  progress.prompts_total = n_requests;

  // Samples one token per row of `logits` for the slots in `order`, records them, and frees the
  // slots whose completion ended.
  auto take_tokens = [&](const std::vector<int64_t>& order, const at::Tensor& logits) {
    std::vector<uint64_t> keys;
    std::vector<int64_t> steps;
    for (int64_t s : order) {
      keys.push_back(requests[slots[s].request].stream_key);
      steps.push_back(static_cast<int64_t>(slots[s].checker->ids().size()));
    }
    // The one device-to-host copy of a step.
    at::Tensor tokens = sampler_.sample(logits, keys, steps).to(at::kCPU);
    const int64_t* t = tokens.data_ptr<int64_t>();
    for (size_t i = 0; i < order.size(); ++i) {
      Active& a = slots[order[i]];
      ++progress.tokens_generated;
      if (a.checker->append(t[i]) == FinishReason::kNone) continue;
      Completion& c = results[a.request];
      c.ids = a.checker->ids();
      c.text = a.checker->text();
      c.finish_reason = a.checker->finish_reason();
      a.request = -1;
      a.checker.reset();
      ++progress.prompts_done;
    }
    if (options_.progress) options_.progress(progress);
  };

  while (progress.prompts_done < n_requests) {
    // Refill: every free slot takes the next prompt; prefill them in calls bounded by max_prefill_tokens.
    std::vector<int64_t> refill;
    int64_t occupied = 0;
    for (const Active& a : slots) occupied += a.request >= 0;
    for (int64_t s = 0; s < model_.n_slots() && !queue.empty() && occupied < active_limit_; ++s) {
      if (slots[s].request >= 0) continue;
      ++occupied;
      slots[s].request = queue.front();
      slots[s].checker.emplace(options_.stop, options_.decode);
      queue.pop_front();
      model_.reset(s);
      refill.push_back(s);
    }
    for (size_t begin = 0; begin < refill.size();) {
      size_t end = begin;
      int64_t longest = 0;
      while (end < refill.size()) {
        int64_t len = static_cast<int64_t>(requests[slots[refill[end]].request].prompt_ids.size());
        int64_t padded = static_cast<int64_t>(end - begin + 1) * std::max(longest, len);
        if (end > begin && prefill_limit_ > 0 && padded > prefill_limit_) break;
        longest = std::max(longest, len);
        ++end;
      }
      std::vector<int64_t> group(refill.begin() + begin, refill.begin() + end);
      std::vector<std::vector<int64_t>> prompts;
      for (int64_t s : group) prompts.push_back(requests[slots[s].request].prompt_ids);
      at::Tensor logits;
      try {
        logits = model_.forward(group, prompts);
      } catch (const std::exception& e) {
        // A failed call leaves the slots' lengths as they were (they move only when a call
        // succeeds), so the same prompts can be prefilled again in smaller groups.
        if (!is_out_of_memory(e) || group.size() == 1) throw;
        prefill_limit_ = std::max<int64_t>(1, static_cast<int64_t>(group.size()) * longest / 2);
        release_cached_device_memory();
        for (int64_t s : group) model_.reset(s);
        continue;
      }
      take_tokens(group, logits);
      begin = end;
    }

    // Decode: one token for every active slot, in slot order.
    std::vector<int64_t> active;
    std::vector<std::vector<int64_t>> last_tokens;
    for (int64_t s = 0; s < model_.n_slots(); ++s) {
      if (slots[s].request < 0) continue;
      active.push_back(s);
      last_tokens.push_back({slots[s].checker->ids().back()});
    }
    if (active.empty()) continue;
    at::Tensor logits;
    try {
      logits = model_.forward(active, last_tokens);
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e) || active.size() == 1) throw;
      // Fewer sequences at once from now on. The ones with the fewest generated tokens (the least
      // work to redo) go back to the front of the queue and start over; a token depends only on
      // the prompt, the seed, the prompt's stream and the step, so they come out the same.
      active_limit_ = std::max<int64_t>(1, static_cast<int64_t>(active.size()) / 2);
      release_cached_device_memory();
      std::vector<int64_t> by_progress = active;
      std::stable_sort(by_progress.begin(), by_progress.end(), [&](int64_t a, int64_t b) {
        return slots[a].checker->ids().size() < slots[b].checker->ids().size();
      });
      std::vector<int64_t> evicted;
      for (size_t i = 0; i + static_cast<size_t>(active_limit_) < active.size(); ++i) {
        Active& a = slots[by_progress[i]];
        evicted.push_back(a.request);
        progress.tokens_generated -= static_cast<int64_t>(a.checker->ids().size());
        a.request = -1;
        a.checker.reset();
        model_.reset(by_progress[i]);
      }
      std::sort(evicted.rbegin(), evicted.rend());  // back in request order at the queue's front
      for (int64_t r : evicted) queue.push_front(r);
      continue;
    }
    take_tokens(active, logits);
  }
  return results;
}

}  // namespace gpujob::model
