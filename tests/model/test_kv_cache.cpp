// KvCache and Decoder::forward_cached: cached logits equal full-forward logits (prefill, decode,
// mixed batches, past Gemma's window, after truncate and reset).
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/kv_cache.hpp"
#include "gpujob/util/error.hpp"
#include "model/tiny_model.hpp"

// Last: libtorch's logging header defines its own CHECK, which Catch's must replace.
#include "catch.hpp"

using namespace gpujob::model;

namespace {

// Logits of the last token of `tokens` from an uncached forward pass, float32 [vocab].
at::Tensor full_last_logits(const Decoder& d, const std::vector<int64_t>& tokens) {
  auto out = d.forward(TokenBatch::from_sequences({tokens}), {{}, true});
  return out.logits[0][static_cast<int64_t>(tokens.size()) - 1];
}

}  // namespace

TEST_CASE("KvCache bookkeeping") {
  KvCache cache({2, 3, 4}, 5, 16, at::kFloat, at::kCPU);
  CHECK(cache.keys(1).sizes() == at::IntArrayRef({5, 16, 3, 4}));
  CHECK(KvCache::bytes_per_token({2, 3, 4}, at::kBFloat16) == 2 * 2 * 3 * 4 * 2);
  cache.set_length(2, 10);
  CHECK(cache.length(2) == 10);
  cache.truncate(2, 4);
  CHECK(cache.length(2) == 4);
  CHECK_THROWS_WITH(cache.truncate(2, 5), "KV cache: cannot truncate slot 2 to 5 positions, it holds 4");
  CHECK_THROWS_WITH(cache.length(5), "KV cache: slot 5 out of range [0, 5)");
  cache.reset(2);
  CHECK(cache.length(2) == 0);
}

TEST_CASE("forward_cached matches the full forward for prefill and decode, every family and key bucket") {
  // Bucket 1 attends over exactly the written positions; 8 and 24 (the whole cache) over masked
  // extra positions, as decode steps with static shapes do.
  for (const int64_t bucket : {1, 8, 24})
  for (const std::string kind : {"llama3", "qwen2", "qwen3", "gemma3", "gemma3_capped"}) {
    INFO("model " << kind << ", key length bucket " << bucket);
    auto decoder = tiny::load_decoder(kind, 99);
    decoder->set_key_length_bucket(bucket);
    const int64_t V = decoder->config().vocab_size;
    KvCache cache = decoder->make_kv_cache(3, 24);
    // Three slots with different prompt lengths (1, 5, 7), prefilled in one call.
    std::vector<int64_t> slots = {2, 0, 1};
    std::vector<std::vector<int64_t>> seqs = {tiny::token_sequence(1, 5, V), tiny::token_sequence(2, 1, V), tiny::token_sequence(3, 7, V)};
    at::Tensor logits = decoder->forward_cached(cache, slots, seqs);
    REQUIRE(logits.sizes() == at::IntArrayRef({3, V}));
    CHECK(logits.scalar_type() == at::kFloat);
    for (int64_t step = 0; step < 9; ++step) {  // decode well past Gemma's window of 4
      std::vector<std::vector<int64_t>> next;
      for (size_t b = 0; b < slots.size(); ++b) {
        INFO("step " << step << " slot " << slots[b]);
        CHECK(cache.length(slots[b]) == static_cast<int64_t>(seqs[b].size()));
        CHECK(tiny::relative_error(logits[b], full_last_logits(*decoder, seqs[b])) < 1e-5);
        const int64_t token = logits[b].argmax().item<int64_t>();
        seqs[b].push_back(token);
        next.push_back({token});
      }
      logits = decoder->forward_cached(cache, slots, next);
    }
  }
}

TEST_CASE("the attended key length is static between bucket boundaries") {
  auto decoder = tiny::load_decoder("qwen3", 99);
  CHECK(decoder->key_length_bucket() == 1);  // CPU default: exact
  CHECK(decoder->attended_key_length(5, 24) == 5);
  decoder->set_key_length_bucket(8);
  for (int64_t len = 1; len <= 8; ++len) CHECK(decoder->attended_key_length(len, 24) == 8);
  for (int64_t len = 9; len <= 16; ++len) CHECK(decoder->attended_key_length(len, 24) == 16);
  CHECK(decoder->attended_key_length(17, 20) == 20);  // capped at the cache
  CHECK_THROWS_WITH(decoder->set_key_length_bucket(0), Catch::Contains("at least 1"));
}

TEST_CASE("forward_cached: slots with different new-token counts, refill, truncate") {
  auto decoder = tiny::load_decoder("gemma3", 99);
  const int64_t V = decoder->config().vocab_size;
  KvCache cache = decoder->make_kv_cache(4, 32);
  std::vector<int64_t> a = tiny::token_sequence(5, 6, V), b = tiny::token_sequence(6, 3, V);
  decoder->forward_cached(cache, {0, 3}, {a, b});

  // One slot decodes a token while another takes three at once (mixed counts in one call).
  std::vector<int64_t> a_more = {7}, b_more = tiny::token_sequence(8, 3, V);
  at::Tensor logits = decoder->forward_cached(cache, {3, 0}, {b_more, a_more});
  a.insert(a.end(), a_more.begin(), a_more.end());
  b.insert(b.end(), b_more.begin(), b_more.end());
  CHECK(tiny::relative_error(logits[0], full_last_logits(*decoder, b)) < 1e-5);
  CHECK(tiny::relative_error(logits[1], full_last_logits(*decoder, a)) < 1e-5);

  // Roll slot 3 back by four tokens and continue along a different path.
  cache.truncate(3, static_cast<int64_t>(b.size()) - 4);
  b.resize(b.size() - 4);
  std::vector<int64_t> b_alt = {9, 10};
  logits = decoder->forward_cached(cache, {3}, {b_alt});
  b.insert(b.end(), b_alt.begin(), b_alt.end());
  CHECK(tiny::relative_error(logits[0], full_last_logits(*decoder, b)) < 1e-5);

  // Refill slot 0 with a new prompt; slot 3 is unaffected.
  cache.reset(0);
  std::vector<int64_t> c = tiny::token_sequence(11, 8, V);
  logits = decoder->forward_cached(cache, {0, 3}, {c, {12}});
  b.push_back(12);
  CHECK(tiny::relative_error(logits[0], full_last_logits(*decoder, c)) < 1e-5);
  CHECK(tiny::relative_error(logits[1], full_last_logits(*decoder, b)) < 1e-5);

  CHECK_THROWS_WITH(decoder->forward_cached(cache, {1, 1}, {{1}, {2}}),
                    "forward_cached: slot 1 appears twice");
  CHECK_THROWS_WITH(decoder->forward_cached(cache, {1}, {{}}), "forward_cached: no new tokens for slot 1");
  CHECK_THROWS_WITH(decoder->forward_cached(cache, {2}, {tiny::token_sequence(1, 33, V)}),
                    "forward_cached: slot 2 holds 0 positions, 33 more exceed max_len 32");
  KvCache other({1, 1, 16}, 1, 8, at::kFloat, at::kCPU);
  CHECK_THROWS_WITH(decoder->forward_cached(other, {0}, {{1}}),
                    Catch::Contains("the KV cache was not made for this decoder"));
}
