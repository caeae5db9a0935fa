// Coordinator under mpirun (3 or 4 ranks): dynamic balancing with a slow worker, a dependent
// second queue fed by the first one's results as they arrive, resume from prior results, and a
// stop that lets in-flight chunks finish.
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "gpujob/cluster/coordinator.hpp"
#include "gpujob/cluster/stop_signal.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob;
using namespace gpujob::cluster;

namespace {

World& world() {
  static World w(nullptr, nullptr);
  return w;
}

config::CoordinatorSettings settings() {
  config::CoordinatorSettings s;
  s.progress_interval_s = 0.5;
  return s;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

TEST_CASE("chunks go to whoever asks: a slow worker does fewer") {
  World& w = world();
  if (w.size() < 3) {
    WARN("runs under mpirun with 3 or more ranks (CTest: mpi_coordinator_3, mpi_coordinator_4)");
    return;
  }
  const int n = 60;
  std::vector<WorkQueue> queues;
  std::map<int64_t, ChunkResult> results;  // rank 0: id -> result
  CoordinatorHooks hooks;
  if (w.rank() == 0) {
    WorkQueue q{"squares", {}, -1, {}};
    for (int64_t id = 0; id < n; ++id) q.chunks.push_back({id, std::to_string(id)});
    queues.push_back(q);
    hooks.on_result = [&](const ChunkResult& r) { CHECK(results.emplace(r.id, r).second); };
  }
  Coordinator c(w, settings(), queues, hooks);
  CHECK(c.num_queues() == 1);
  int mine = 0;
  while (auto chunk = c.next(0)) {
    sleep_ms(w.rank() == 1 ? 60 : 5);  // rank 1 is twelve times slower
    const int64_t v = std::stoll(chunk->input);
    CHECK(chunk->dependency_result.empty());
    c.complete(*chunk, std::to_string(v * v));
    ++mine;
  }
  const RunSummary summary = c.finish();
  CHECK_FALSE(summary.stopped);
  REQUIRE(summary.queues.size() == 1);
  CHECK(summary.queues[0].completed == n);
  CHECK(summary.queues[0].total == n);
  if (w.rank() == 0) {
    REQUIRE(results.size() == static_cast<size_t>(n));
    std::map<int, int> per_rank;
    for (const auto& [id, r] : results) {
      CHECK(r.result == std::to_string(id * id));
      ++per_rank[r.rank];
    }
    for (int r = 0; r < w.size(); ++r) INFO("rank " << r << ": " << per_rank[r] << " chunks");
    CHECK(per_rank[1] >= 1);
    for (int r = 0; r < w.size(); ++r) {
      if (r != 1) CHECK(per_rank[1] * 3 < per_rank[r]);
    }
  }
}

TEST_CASE("a dependent queue consumes the first queue's results as they arrive") {
  World& w = world();
  if (w.size() < 3) {
    WARN("runs under mpirun with 3 or more ranks (CTest: mpi_coordinator_3, mpi_coordinator_4)");
    return;
  }
  const int n = 12;
  std::vector<WorkQueue> queues;
  std::vector<std::pair<int, int64_t>> order;  // rank 0: completion order (queue, id)
  CoordinatorHooks hooks;
  if (w.rank() == 0) {
    WorkQueue a{"generate", {}, -1, {}};
    WorkQueue b{"extract", {}, 0, {}};
    for (int64_t id = 0; id < n; ++id) {
      if (id == 3) {
        b.prior_results[id] = "prior-3";  // finished by an earlier run: available at once
      } else {
        a.chunks.push_back({id, "a" + std::to_string(id)});
      }
      b.chunks.push_back({id, "b" + std::to_string(id)});
    }
    queues = {a, b};
    hooks.on_result = [&](const ChunkResult& r) { order.emplace_back(r.queue, r.id); };
  }
  Coordinator c(w, settings(), queues, hooks);
  REQUIRE(c.num_queues() == 2);
  // Rank 1 generates (slowly), the last rank extracts, rank 0 does both as phases.
  const bool generate = w.rank() != w.size() - 1;
  const bool extract = w.rank() == 0 || w.rank() == w.size() - 1;
  if (generate) {
    while (auto chunk = c.next(0)) {
      sleep_ms(w.rank() == 1 ? 30 : 10);
      CHECK(chunk->input == "a" + std::to_string(chunk->id));
      c.complete(*chunk, "gen-" + std::to_string(chunk->id));
    }
  }
  if (extract) {
    while (auto chunk = c.next(1)) {
      CHECK(chunk->input == "b" + std::to_string(chunk->id));
      CHECK(chunk->dependency_result == (chunk->id == 3 ? "prior-3" : "gen-" + std::to_string(chunk->id)));
      c.complete(*chunk, "ext");
    }
  }
  const RunSummary summary = c.finish();
  REQUIRE(summary.queues.size() == 2);
  CHECK(summary.queues[0].completed == n - 1);
  CHECK(summary.queues[1].completed == n);
  if (w.rank() == 0) {
    REQUIRE(order.size() == static_cast<size_t>(2 * n - 1));
    // Extraction started long before generation ended (overlap, not phases over the whole set).
    size_t first_extract = order.size(), last_generate = 0;
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i].first == 1) first_extract = std::min(first_extract, i);
      if (order[i].first == 0) last_generate = i;
    }
    CHECK(first_extract < last_generate);
    // And never before its own generation chunk.
    std::set<int64_t> generated = {3};
    for (const auto& [q, id] : order) {
      if (q == 0) generated.insert(id);
      if (q == 1) CHECK(generated.count(id) == 1);
    }
  }
}

TEST_CASE("a queue that depends on a missing chunk is refused on every rank") {
  World& w = world();
  if (w.size() < 3) {
    WARN("runs under mpirun with 3 or more ranks (CTest: mpi_coordinator_3, mpi_coordinator_4)");
    return;
  }
  std::vector<WorkQueue> queues;
  if (w.rank() == 0) {
    queues = {WorkQueue{"a", {{0, ""}}, -1, {}}, WorkQueue{"b", {{0, ""}, {7, ""}}, 0, {}}};
  }
  CHECK_THROWS_WITH(Coordinator(w, settings(), queues),
                    "queue b: chunk 7 depends on chunk 7 of queue a, which is neither queued nor given as a prior result");
}

// Last: the stop flag cannot be taken back within a process.
TEST_CASE("a stop hands out nothing more, lets in-flight chunks finish, and is reported everywhere") {
  World& w = world();
  if (w.size() < 3) {
    WARN("runs under mpirun with 3 or more ranks (CTest: mpi_coordinator_3, mpi_coordinator_4)");
    return;
  }
  const int n = 200;
  std::vector<WorkQueue> queues;
  CoordinatorHooks hooks;
  std::mutex m;
  int results = 0;
  bool on_stop_called = false;
  RunSummary seen_by_hook;
  if (w.rank() == 0) {
    WorkQueue q{"long", {}, -1, {}};
    for (int64_t id = 0; id < n; ++id) q.chunks.push_back({id, ""});
    queues.push_back(q);
    hooks.on_result = [&](const ChunkResult&) {
      std::lock_guard<std::mutex> lock(m);
      ++results;
    };
    hooks.on_stop = [&](const RunSummary& s) {
      on_stop_called = true;
      seen_by_hook = s;
    };
  }
  Coordinator c(w, settings(), queues, hooks);
  int done = 0;
  while (auto chunk = c.next(0)) {
    sleep_ms(10);
    // The last rank receives "the signal" after its third chunk, in the middle of its work.
    if (w.rank() == w.size() - 1 && ++done == 3) request_stop();
    c.complete(*chunk, "");
  }
  CHECK(c.stopped());
  const RunSummary summary = c.finish();
  CHECK(summary.stopped);
  REQUIRE(summary.queues.size() == 1);
  CHECK(summary.queues[0].completed < n);
  CHECK(summary.queues[0].completed >= 3);
  if (w.rank() == 0) {
    CHECK(on_stop_called);
    CHECK(seen_by_hook.queues[0].completed == summary.queues[0].completed);
    CHECK(results == summary.queues[0].completed);  // every handed-out chunk came back
  }
}
