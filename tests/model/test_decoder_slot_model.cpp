// DecoderSlotModel and Decoder::decode_step: a decode step over every slot (fixed shapes, what a
// CUDA graph captures) gives the logits and cache contents of forward_cached over the slots asked.
#include "gpujob/model/decoder_slot_model.hpp"
#include "gpujob/model/decode_graphs.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/device.hpp"
#include "gpujob/model/generator.hpp"
#include "gpujob/util/error.hpp"
#include "model/tiny_model.hpp"

#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::model;

namespace {

bool have_gpu() {
  if (visible_gpu_count() > 0) return true;
  WARN("no GPU visible: CUDA graphs are not run");
  return false;
}

LoadOptions on_gpu() {
  LoadOptions load;
  load.device = at::Device(at::kCUDA, 0);
  return load;
}

}  // namespace

TEST_CASE("decode_step over every slot equals forward_cached over the slots in use, every family") {
  // Gemma's tiny window is 4 positions: the steps below run well past it.
  for (const std::string kind : {"llama3", "qwen2", "qwen3", "gemma3", "gemma3_capped"})
  for (const int64_t bucket : {1, 8}) {
    INFO("model " << kind << ", key length bucket " << bucket);
    auto decoder = tiny::load_decoder(kind, 7);
    decoder->set_key_length_bucket(bucket);
    const int64_t V = decoder->config().vocab_size, S = 4, max_len = 20;
    // Two caches with the same prompts in slots 0, 1, 3 (lengths 6, 2, 9); slot 2 stays empty.
    KvCache per_call = decoder->make_kv_cache(S, max_len), all_slots = decoder->make_kv_cache(S, max_len);
    const std::vector<int64_t> used = {0, 1, 3};
    const std::vector<std::vector<int64_t>> prompts = {tiny::token_sequence(1, 6, V), tiny::token_sequence(2, 2, V), tiny::token_sequence(3, 9, V)};
    (void)decoder->forward_cached(per_call, used, prompts);
    (void)decoder->forward_cached(all_slots, used, prompts);
    for (int step = 0; step < 8; ++step) {
      INFO("decode step " << step);
      std::vector<std::vector<int64_t>> next;
      std::vector<int64_t> ids(S, 0), positions(S);
      for (size_t i = 0; i < used.size(); ++i) {
        next.push_back({(step * 7 + static_cast<int64_t>(i) * 5 + 3) % V});
        ids[used[i]] = next.back()[0];
      }
      int64_t longest = 0;
      for (int64_t s = 0; s < S; ++s) {
        positions[s] = all_slots.length(s);
        longest = std::max(longest, positions[s] + 1);
      }
      const at::Tensor want = decoder->forward_cached(per_call, used, next);
      const at::Tensor got = decoder->decode_step(all_slots, at::tensor(ids, at::kLong), at::tensor(positions, at::kLong),
                                                  decoder->attended_key_length(longest, max_len));
      REQUIRE(got.sizes() == at::IntArrayRef({S, V}));
      for (size_t i = 0; i < used.size(); ++i) {
        CHECK(tiny::relative_error(got[used[i]], want[static_cast<int64_t>(i)]) < 1e-5);
        all_slots.set_length(used[i], all_slots.length(used[i]) + 1);
      }
      // The unused slot got a throw-away token at its length and keeps its length (0).
      CHECK(all_slots.length(2) == 0);
    }
    // The written positions of the slots in use hold the same keys and values.
    for (int64_t s : used) {
      const int64_t n = per_call.length(s);
      REQUIRE(all_slots.length(s) == n);
      for (int64_t l = 0; l < decoder->config().num_layers; ++l) {
        CHECK(tiny::relative_error(all_slots.keys(l)[s].narrow(0, 0, n), per_call.keys(l)[s].narrow(0, 0, n)) < 1e-5);
        CHECK(tiny::relative_error(all_slots.values(l)[s].narrow(0, 0, n), per_call.values(l)[s].narrow(0, 0, n)) < 1e-5);
      }
    }
  }
}

TEST_CASE("DecoderSlotModel runs decode steps of most slots over every slot, smaller ones per call") {
  auto decoder = tiny::load_decoder("qwen3", 7);
  const int64_t V = decoder->config().vocab_size;
  DecoderSlotModel all(*decoder, 4, 16, SlotDecode::kAllSlots), per_call(*decoder, 4, 16, SlotDecode::kPerCall);
  CHECK(all.decode_mode() == SlotDecode::kAllSlots);
  CHECK_FALSE(all.uses_cuda_graphs());
  for (DecoderSlotModel* m : {&all, &per_call}) {
    (void)m->forward({0, 1, 2, 3}, {tiny::token_sequence(4, 3, V), tiny::token_sequence(5, 5, V), tiny::token_sequence(6, 1, V), tiny::token_sequence(7, 4, V)});
  }
  // 3 of 4 slots (in any order): every slot at once. 1 of 4: per call.
  const at::Tensor a = all.forward({2, 0, 3}, {{5}, {9}, {1}});
  const at::Tensor b = per_call.forward({2, 0, 3}, {{5}, {9}, {1}});
  CHECK(all.all_slot_steps() == 1);
  CHECK(tiny::relative_error(a, b) < 1e-5);
  // Every slot in slot order (the generator's full steps): the rows copied without an index.
  const at::Tensor c = all.forward({0, 1, 2, 3}, {{3}, {7}, {2}, {8}});
  const at::Tensor d = per_call.forward({0, 1, 2, 3}, {{3}, {7}, {2}, {8}});
  CHECK(all.all_slot_steps() == 2);
  REQUIRE(c.sizes() == d.sizes());
  CHECK(tiny::relative_error(c, d) < 1e-5);
  CHECK(all.forward({1}, {{4}}).size(0) == 1);
  CHECK(all.all_slot_steps() == 2);
  CHECK(per_call.all_slot_steps() == 0);
  for (int64_t s = 0; s < 4; ++s) CHECK(all.n_slots() == 4);
  // Bad input is the same one-line error as per call.
  CHECK_THROWS_WITH(all.forward({0, 0, 1}, {{1}, {2}, {3}}), "decode: slot 0 appears twice");
  CHECK_THROWS_WITH(all.forward({0, 1, 2}, {{1}, {V}, {3}}),
                    Catch::Matchers::Contains("token id " + std::to_string(V) + " is outside the vocabulary"));
}

TEST_CASE("a full slot outside the call sends the step per call; kAuto on the CPU is per call") {
  auto decoder = tiny::load_decoder("llama3", 7);
  const int64_t V = decoder->config().vocab_size;
  DecoderSlotModel model(*decoder, 2, 6, SlotDecode::kAllSlots);
  (void)model.forward({0, 1}, {tiny::token_sequence(1, 6, V), tiny::token_sequence(2, 2, V)});  // slot 0 is full
  (void)model.forward({1}, {{3}});  // half of the slots, but slot 0 has no room for a throw-away token
  CHECK(model.all_slot_steps() == 0);
  DecoderSlotModel automatic(*decoder, 2, 6);
  CHECK(automatic.decode_mode() == SlotDecode::kPerCall);
}

TEST_CASE("on a GPU, decode steps replayed from CUDA graphs give the tokens of per-call steps") {
  if (!have_gpu()) return;
  for (const std::string kind : {"qwen3", "gemma3"}) {
    INFO("model " << kind);
    const LoadOptions load = on_gpu();
    auto decoder = tiny::load_decoder(kind, 5, load);
    decoder->set_key_length_bucket(8);  // several buckets, so several graphs, in 24 positions
    const int64_t V = decoder->config().vocab_size;
    std::vector<GenerationRequest> requests;
    for (int64_t i = 0; i < 9; ++i) requests.push_back({tiny::token_sequence(i + 1, 2 + i % 5, V), static_cast<uint64_t>(i)});
    GeneratorOptions options;
    options.stop.max_new_tokens = 16;
    options.stop.ignore_eos = true;
    DecoderSlotModel per_call(*decoder, 4, 24, SlotDecode::kPerCall), graphs(*decoder, 4, 24, SlotDecode::kCudaGraphs);
    const auto want = Generator(per_call, options).generate(requests);
    const auto got = Generator(graphs, options).generate(requests);
    CHECK(graphs.uses_cuda_graphs());
    CHECK(graphs.all_slot_steps() > 0);
    for (size_t i = 0; i < requests.size(); ++i) {
      INFO("prompt " << i);
      CHECK(got[i].ids == want[i].ids);
    }
  }
}

TEST_CASE("on a GPU, one-sequence decoding from CUDA graphs with folded norms gives the per-call tokens") {
  if (!have_gpu()) return;
  for (const std::string kind : {"llama3", "qwen3"}) {
    INFO("model " << kind);
    const LoadOptions load = on_gpu();
    auto json = tiny::config_for(kind);
    json["head_dim"] = 64;  // a size the decode attention kernel takes
    const std::string dir = tiny::write_checkpoint(json, tiny::random_weights(parse_model_config(json, "config.json"), 6));
    auto plain = Decoder::load(dir, load), experimental = Decoder::load(dir, load);
    for (auto* d : {plain.get(), experimental.get()}) {
      d->set_fused_ops(true);
      d->set_key_length_bucket(8);
    }
    plain->set_fold_norms(false);
    experimental->set_fold_norms(true);
    const int64_t V = plain->config().vocab_size;
    std::vector<GenerationRequest> requests;
    for (int64_t i = 0; i < 3; ++i) requests.push_back({tiny::token_sequence(i + 3, 2 + i, V), static_cast<uint64_t>(i)});
    GeneratorOptions options;
    options.stop.max_new_tokens = 16;
    options.stop.ignore_eos = true;
    DecoderSlotModel per_call(*plain, 1, 24, SlotDecode::kPerCall);
    DecoderSlotModel graphs(*experimental, 1, 24, SlotDecode::kCudaGraphs);
    const auto want = Generator(per_call, options).generate(requests);
    const auto got = Generator(graphs, options).generate(requests);
    CHECK(graphs.uses_cuda_graphs());
    CHECK(experimental->folded_blocks() > 0);
    for (size_t i = 0; i < requests.size(); ++i) {
      INFO("prompt " << i);
      CHECK(got[i].ids == want[i].ids);
    }
  }
}
