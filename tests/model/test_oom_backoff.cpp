// Out-of-memory back-off: a batch that does not fit is halved and retried; no item is lost or
// finished twice, and real errors still surface.
#include <stdexcept>
#include <utility>
#include <vector>

#include "gpujob/model/oom_backoff.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using gpujob::model::run_batches_with_oom_backoff;

namespace {

// A fake device that holds at most `capacity` items per batch and throws libtorch's message otherwise.
struct FakeDevice {
  int64_t capacity;
  std::vector<std::pair<int64_t, int64_t>> finished;  // batches that ran to completion
  int attempts = 0;
  void run(int64_t begin, int64_t end) {
    ++attempts;
    if (end - begin > capacity) {
      throw std::runtime_error("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total capacity)");
    }
    finished.emplace_back(begin, end);
  }
};

}  // namespace

TEST_CASE("an out-of-memory batch is halved until it fits, and every item runs exactly once") {
  FakeDevice device{3, {}};
  std::vector<int64_t> backoffs;
  int64_t batch = 16;
  run_batches_with_oom_backoff(
      10, batch, [&](int64_t b, int64_t e) { device.run(b, e); }, [&](int64_t s) { backoffs.push_back(s); });
  CHECK(backoffs == std::vector<int64_t>{8, 4, 2});
  CHECK(batch == 2);  // the size that fit stays for the next chunk
  std::vector<int> runs(10, 0);
  for (auto [b, e] : device.finished) {
    CHECK(e - b <= 2);
    for (int64_t i = b; i < e; ++i) ++runs[i];
  }
  CHECK(runs == std::vector<int>(10, 1));
  CHECK(device.finished.front().first == 0);
  CHECK(device.finished.back().second == 10);
}

TEST_CASE("a batch size that fits never backs off") {
  FakeDevice device{4, {}};
  int64_t batch = 4;
  run_batches_with_oom_backoff(9, batch, [&](int64_t b, int64_t e) { device.run(b, e); });
  CHECK(batch == 4);
  CHECK(device.attempts == 3);  // 4 + 4 + 1
}

TEST_CASE("out of memory at batch size 1, and errors that are not out of memory, propagate") {
  FakeDevice device{0, {}};
  int64_t batch = 2;
  CHECK_THROWS_WITH(run_batches_with_oom_backoff(3, batch, [&](int64_t b, int64_t e) { device.run(b, e); }),
                    Catch::Contains("out of memory"));
  CHECK(batch == 1);

  int64_t other = 8;
  int calls = 0;
  CHECK_THROWS_WITH(run_batches_with_oom_backoff(5, other,
                                                 [&](int64_t, int64_t) {
                                                   ++calls;
                                                   throw std::runtime_error("tensor model.norm.weight: NaN");
                                                 }),
                    "tensor model.norm.weight: NaN");
  CHECK(calls == 1);
  CHECK(other == 8);
}

TEST_CASE("a batch size below 1 is refused") {
  int64_t batch = 0;
  CHECK_THROWS_WITH(run_batches_with_oom_backoff(3, batch, [](int64_t, int64_t) {}), Catch::Contains("at least 1"));
}
