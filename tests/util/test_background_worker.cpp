// BackgroundWorker: tasks run in order on one other thread, the queue is bounded, and the first
// error reaches the caller while later tasks are dropped.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gpujob/util/background_worker.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using gpujob::BackgroundWorker;

TEST_CASE("tasks run in the order they were queued, on a thread other than the caller's") {
  std::vector<int> done;
  std::vector<std::thread::id> threads;
  {
    BackgroundWorker worker(3);
    for (int i = 0; i < 50; ++i) {
      worker.enqueue([&, i] {
        done.push_back(i);  // only the worker touches `done` until drain() returns
        threads.push_back(std::this_thread::get_id());
      });
    }
    worker.drain();
    REQUIRE(done.size() == 50);
    for (int i = 0; i < 50; ++i) CHECK(done[i] == i);
    for (auto id : threads) CHECK(id != std::this_thread::get_id());
    // The worker goes on after a drain.
    worker.enqueue([&] { done.push_back(50); });
    worker.drain();
    CHECK(done.size() == 51);
  }
}

TEST_CASE("at most max_pending tasks wait: enqueue blocks until the worker takes one") {
  std::atomic<bool> release{false}, started{false};
  std::atomic<int> queued{0};
  BackgroundWorker worker(2);
  worker.enqueue([&] {
    started = true;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::thread producer([&] {
    for (int i = 0; i < 4; ++i) {
      worker.enqueue([] {});
      ++queued;
    }
  });
  // One task runs (blocked), two wait; the producer stays stuck on its third.
  for (int waited = 0; queued.load() < 2 && waited < 5000; ++waited) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(queued.load() == 2);
  release = true;
  producer.join();
  worker.drain();
  CHECK(queued.load() == 4);
}

TEST_CASE("the first error is rethrown on the caller's thread and later tasks are dropped") {
  std::atomic<int> ran{0};
  BackgroundWorker worker(8);
  worker.enqueue([&] { ++ran; });
  worker.enqueue([] { throw std::runtime_error("activations.h5: write of chunk 3 failed"); });
  worker.enqueue([&] { ++ran; });
  CHECK_THROWS_WITH(worker.drain(), "activations.h5: write of chunk 3 failed");
  CHECK(ran.load() == 1);
  CHECK_THROWS_WITH(worker.enqueue([&] { ++ran; }), "activations.h5: write of chunk 3 failed");
  CHECK(ran.load() == 1);
}

TEST_CASE("destroying a worker with queued tasks finishes the running one and drops the rest") {
  std::atomic<int> ran{0};
  std::atomic<bool> started{false};
  {
    BackgroundWorker worker(8);
    worker.enqueue([&] {
      started = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      ++ran;
    });
    for (int i = 0; i < 5; ++i) worker.enqueue([&] { ++ran; });
    while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(ran.load() == 1);
}
