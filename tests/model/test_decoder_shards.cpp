// Tensor parallelism inside the decoder: two shards in two threads, joined by an in-process
// Collectives, reproduce the single-shard model (full forward and cached decoding).
#include "gpujob/model/decoder.hpp"
#include "gpujob/util/error.hpp"
#include "model/tiny_model.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

// Last: libtorch's logging header defines its own CHECK, which Catch's must replace.
#include "catch.hpp"

using namespace gpujob::model;

namespace {

// Shards of one process exchange tensors through shared memory; every round waits for all.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), slots_(size) {}
  std::vector<at::Tensor> exchange(int rank, const at::Tensor& t) {
    std::unique_lock<std::mutex> lock(mutex_);
    slots_[rank] = t.clone();
    const int64_t round = round_;
    if (++arrived_ == size_) {
      result_ = slots_;
      arrived_ = 0;
      ++round_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return round_ != round; });
    }
    return result_;
  }
  int size() const { return size_; }

 private:
  int size_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<at::Tensor> slots_, result_;
  int arrived_ = 0;
  int64_t round_ = 0;
};

class ThreadCollectives final : public Collectives {
 public:
  ThreadCollectives(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }
  void all_reduce_sum(at::Tensor& t) override {
    auto parts = group_.exchange(rank_, t);
    at::Tensor sum = parts[0];
    for (size_t i = 1; i < parts.size(); ++i) sum = sum + parts[i];  // same order on every shard
    t.copy_(sum);
  }
  at::Tensor all_gather(const at::Tensor& t, int64_t dim) override {
    return at::cat(group_.exchange(rank_, t), dim);
  }
  bool graph_capturable() const override { return false; }  // the threads meet on the host

 private:
  ThreadGroup& group_;
  int rank_;
};

}  // namespace

TEST_CASE("two tensor-parallel shards reproduce the single-shard decoder") {
  for (const std::string kind : {"qwen2", "gemma3"}) {
    INFO("model " << kind);
    const auto json = tiny::config_for(kind);
    const ModelConfig config = parse_model_config(json, "config.json");
    const std::string dir = tiny::write_checkpoint(json, tiny::random_weights(config, 21));
    auto single = Decoder::load(dir, {});
    const std::vector<std::vector<int64_t>> seqs = {{1, 5, 9, 17, 33, 2, 40, 41, 7}, {1, 60, 3}};
    const auto expected = single->forward(TokenBatch::from_sequences(seqs), {{2}, true});
    KvCache single_cache = single->make_kv_cache(2, 16);
    at::Tensor expected_prefill = single->forward_cached(single_cache, {0, 1}, seqs);
    at::Tensor expected_decode = single->forward_cached(single_cache, {1, 0}, {{4}, {8}});

    ThreadGroup group(2);
    std::vector<ForwardOutput> outputs(2);
    std::vector<at::Tensor> prefill(2), decode(2);
    std::vector<std::string> errors(2);
    std::vector<std::thread> threads;
    for (int rank = 0; rank < 2; ++rank) {
      threads.emplace_back([&, rank] {
        try {
          ThreadCollectives collectives(group, rank);
          LoadOptions options;
          options.shard_index = rank;
          options.shard_count = 2;
          options.collectives = &collectives;
          auto shard = Decoder::load(dir, options);
          outputs[rank] = shard->forward(TokenBatch::from_sequences(seqs), {{2}, true});
          KvCache cache = shard->make_kv_cache(2, 16);
          prefill[rank] = shard->forward_cached(cache, {0, 1}, seqs);
          decode[rank] = shard->forward_cached(cache, {1, 0}, {{4}, {8}});
        } catch (const std::exception& e) {
          errors[rank] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    REQUIRE(errors[0].empty());
    REQUIRE(errors[1].empty());
    for (int rank = 0; rank < 2; ++rank) {
      INFO("rank " << rank);
      CHECK(tiny::relative_error(outputs[rank].hidden[0], expected.hidden[0]) < 1e-5);
      CHECK(tiny::relative_error(outputs[rank].logits, expected.logits) < 1e-5);
      CHECK(tiny::relative_error(prefill[rank], expected_prefill) < 1e-5);
      CHECK(tiny::relative_error(decode[rank], expected_decode) < 1e-5);
    }
  }
}

TEST_CASE("a shard's collectives must match its shard index and count") {
  const auto json = tiny::config_for("llama3");
  const ModelConfig config = parse_model_config(json, "config.json");
  const std::string dir = tiny::write_checkpoint(json, tiny::random_weights(config, 2));
  LoadOptions options;
  options.shard_index = 1;
  options.shard_count = 2;  // but no collectives: the identity has size 1
  CHECK_THROWS_WITH(Decoder::load(dir, options),
                    "decoder: collectives have rank 0 of 1 but the decoder holds shard 1 of 2");
}
