#include "jobs/selftest.hpp"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "gpujob/cluster/coordinator.hpp"
#include "gpujob/cluster/stop_signal.hpp"
#include "gpujob/util/log.hpp"

namespace gpujob::jobs {

namespace {

using nlohmann::json;

struct Record {
  int queue;
  int64_t id;
  int rank;
  int64_t value;
};

std::map<std::pair<int, int64_t>, Record> read_progress(const std::string& path) {
  std::map<std::pair<int, int64_t>, Record> done;
  std::ifstream in(path);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    try {
      const json j = json::parse(line);
      Record r{j.at("queue").get<int>(), j.at("id").get<int64_t>(), j.at("rank").get<int>(), j.at("value").get<int64_t>()};
      done[{r.queue, r.id}] = r;
    } catch (const std::exception&) {
      // A line cut short by a kill is the chunk that was being written: it is redone.
      spdlog::warn("{}:{}: unreadable progress line ignored", path, number);
    }
  }
  return done;
}

void work(const config::SelftestSettings& t, int rank, const cluster::Chunk& chunk) {
  const int delay = rank < static_cast<int>(t.delay_ms_by_rank.size()) ? t.delay_ms_by_rank[rank] : t.delay_ms;
  if (delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  // The first stage-1 chunk at or after fail_chunk that this rank takes (chunks go to whoever asks).
  static bool failed_once = false;
  if (rank == t.fail_rank && chunk.id >= t.fail_chunk && chunk.queue == 0 && !failed_once) {
    failed_once = true;
    if (t.fail_mode == "exit") _exit(3);  // dies without a word, as a crashed process would
    if (t.fail_mode == "segfault") std::raise(SIGSEGV);  // a crash: the crash report names the rank
    fail("selftest: injected failure");
  }
}

int64_t stage_one(const config::SelftestSettings& t, int64_t id) {
  int64_t sum = 0;
  for (int k = 0; k < t.items_per_chunk; ++k) {
    const int64_t v = id * t.items_per_chunk + k;
    sum += v * v;
  }
  return sum;
}

}  // namespace

int run_selftest_job(JobContext& context) {
  const config::RunConfig& cfg = context.config;
  const config::SelftestSettings& t = cfg.selftest;
  const int rank = context.world.rank();
  const std::string dir = cfg.run_dir();
  const std::string progress_path = dir + "/selftest_progress.jsonl";

  std::vector<cluster::WorkQueue> queues;
  std::map<std::pair<int, int64_t>, Record> records;
  std::mutex records_mutex;
  std::ofstream progress;
  if (rank == 0) {
    std::filesystem::create_directories(dir);
    records = read_progress(progress_path);
    cluster::WorkQueue first{"square_sum", {}, -1, {}};
    cluster::WorkQueue second{"double", {}, 0, {}};
    for (int64_t id = 0; id < t.num_chunks; ++id) {
      auto done_first = records.find({0, id});
      if (done_first == records.end()) {
        first.chunks.push_back({id, json{{"id", id}}.dump()});
      } else {
        second.prior_results[id] = json{{"value", done_first->second.value}}.dump();
      }
      if (t.two_stages && !records.count({1, id})) second.chunks.push_back({id, json{{"id", id}}.dump()});
    }
    queues.push_back(std::move(first));
    if (t.two_stages) queues.push_back(std::move(second));
    progress.open(progress_path, std::ios::app);
    GPUJOB_CHECK(progress.good(), progress_path, ": cannot open for appending");
    if (!records.empty()) spdlog::info("resuming: {} chunk result(s) found in {}", records.size(), progress_path);
  }

  cluster::CoordinatorHooks hooks;
  hooks.on_result = [&](const cluster::ChunkResult& r) {
    const json j = json::parse(r.result);
    Record rec{r.queue, r.id, r.rank, j.at("value").get<int64_t>()};
    progress << json{{"queue", rec.queue}, {"id", rec.id}, {"rank", rec.rank}, {"value", rec.value}}.dump() << "\n";
    progress.flush();
    std::lock_guard<std::mutex> lock(records_mutex);
    records[{rec.queue, rec.id}] = rec;
  };
  hooks.on_stop = [&](const cluster::RunSummary& summary) {
    json queues_json = json::array();
    for (const auto& q : summary.queues) {
      queues_json.push_back({{"name", q.name}, {"total", q.total}, {"completed", q.completed}});
    }
    std::ofstream out(dir + "/selftest_stopped.json");
    out << json{{"stopped", true}, {"signal", cluster::stop_signal_number()}, {"queues", queues_json},
                {"progress", progress_path}}
               .dump(2)
        << "\n";
  };

  cluster::Coordinator coordinator(context.world, cfg.coordinator, std::move(queues), hooks);

  // Single stage: every rank works on it. Two stages: generators take stage 1, extractors stage 2,
  // and a rank holding both (or neither) runs them as phases.
  const bool gen = context.self.has(config::Role::generator);
  const bool ext = context.self.has(config::Role::extractor);
  const bool do_first = !t.two_stages || gen || !ext;
  const bool do_second = t.two_stages && (ext || !gen);
  if (do_first) {
    while (auto chunk = coordinator.next(0)) {
      work(t, rank, *chunk);
      coordinator.complete(*chunk, json{{"value", stage_one(t, chunk->id)}}.dump());
    }
  }
  if (do_second) {
    while (auto chunk = coordinator.next(1)) {
      work(t, rank, *chunk);
      const int64_t first = json::parse(chunk->dependency_result).at("value").get<int64_t>();
      coordinator.complete(*chunk, json{{"value", 2 * first}}.dump());
    }
  }
  const cluster::RunSummary summary = coordinator.finish();
  if (summary.stopped) return cluster::kExitStopped;

  if (rank == 0) {
    json chunks = json::array();
    for (const auto& [key, r] : records) {
      chunks.push_back({{"queue", r.queue}, {"id", r.id}, {"rank", r.rank}, {"value", r.value}});
    }
    std::ofstream out(dir + "/selftest.json");
    out << json{{"complete", true}, {"num_chunks", t.num_chunks}, {"two_stages", t.two_stages},
                {"ranks", context.world.size()}, {"chunks", chunks}}
               .dump(1)
        << "\n";
    GPUJOB_CHECK(out.good(), dir, "/selftest.json: write failed");
    spdlog::info("selftest: {} result(s) in {}/selftest.json", chunks.size(), dir);
  }
  return 0;
}

}  // namespace gpujob::jobs
