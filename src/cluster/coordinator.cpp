#include "gpujob/cluster/coordinator.hpp"

#include <chrono>
#include <cstdio>
#include <deque>
#include <limits>
#include <mutex>
#include <set>

#include "gpujob/cluster/mpi_check.hpp"
#include "gpujob/cluster/stop_signal.hpp"
#include "gpujob/util/log.hpp"
#include "wire.hpp"

namespace gpujob::cluster {

namespace {

using Clock = std::chrono::steady_clock;

// What report_failure needs when a job throws: the coordinator's channel and the chunk in hand.
struct FailureChannel {
  std::mutex mutex;
  MPI_Comm comm = MPI_COMM_NULL;
  bool has_chunk = false;
  int queue = 0;
  int64_t chunk = 0;
};
FailureChannel g_channel;

std::string receive(MPI_Comm comm, const MPI_Status& probed) {
  int count = 0;
  MPI_CHECK(MPI_Get_count(&probed, MPI_BYTE, &count));
  std::string bytes(count, '\0');
  MPI_CHECK(MPI_Recv(bytes.data(), count, MPI_BYTE, probed.MPI_SOURCE, probed.MPI_TAG, comm, MPI_STATUS_IGNORE));
  return bytes;
}

void send(MPI_Comm comm, int dest, int tag, const std::string& bytes) {
  GPUJOB_CHECK(bytes.size() < static_cast<size_t>(std::numeric_limits<int>::max()),
               "coordinator message of ", bytes.size(), " bytes is too large (payloads must stay below 2 GiB)");
  MPI_CHECK(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, tag, comm));
}

[[noreturn]] void print_and_abort(const std::string& line, int status) {
  std::fprintf(stderr, "gpujob: error: %s\n", line.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, status);
  std::_Exit(status);
}

std::string format_seconds(double s) {
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(text, sizeof text, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  } else {
    std::snprintf(text, sizeof text, "%.1fs", s);
  }
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The server: rank 0's coordinator thread.
// ---------------------------------------------------------------------------------------------
class Coordinator::Server {
 public:
  Server(MPI_Comm comm, MPI_Comm reply_comm, int size, const config::CoordinatorSettings& settings,
         std::vector<WorkQueue> queues, CoordinatorHooks hooks)
      : comm_(comm), reply_comm_(reply_comm), size_(size), settings_(settings), hooks_(std::move(hooks)) {
    for (auto& q : queues) {
      QueueState s;
      s.spec = std::move(q);
      for (size_t i = 0; i < s.spec.chunks.size(); ++i) {
        GPUJOB_CHECK(s.index_of.emplace(s.spec.chunks[i].id, i).second, "queue ", s.spec.name, ": chunk id ",
                     s.spec.chunks[i].id, " appears twice");
      }
      s.handed.assign(s.spec.chunks.size(), false);
      states_.push_back(std::move(s));
    }
    for (size_t q = 0; q < states_.size(); ++q) {
      QueueState& s = states_[q];
      const int d = s.spec.depends_on;
      if (d < 0) {
        for (size_t i = 0; i < s.spec.chunks.size(); ++i) s.ready.push_back(i);
        continue;
      }
      GPUJOB_CHECK(d < static_cast<int>(q), "queue ", s.spec.name, " depends on queue ", d,
                   ", which is not an earlier queue");
      states_[d].dependents.push_back(static_cast<int>(q));
      for (size_t i = 0; i < s.spec.chunks.size(); ++i) {
        const int64_t id = s.spec.chunks[i].id;
        if (auto prior = s.spec.prior_results.find(id); prior != s.spec.prior_results.end()) {
          s.dependency_results[id] = prior->second;
          s.ready.push_back(i);
        } else {
          GPUJOB_CHECK(states_[d].index_of.count(id), "queue ", s.spec.name, ": chunk ", id, " depends on chunk ", id,
                       " of queue ", states_[d].spec.name, ", which is neither queued nor given as a prior result");
        }
      }
      s.spec.prior_results.clear();
    }
  }

  void run() {
    start_ = last_progress_ = Clock::now();
    int idle_us = 50;
    while (byes_ < size_) {
      int flag = 0;
      MPI_Status status;
      MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, &status));
      if (!flag) {
        if (stop_requested() && !stopping_) begin_stop("signal " + std::to_string(stop_signal_number()) + " on rank 0");
        log_progress(false);
        std::this_thread::sleep_for(std::chrono::microseconds(idle_us));
        idle_us = std::min(idle_us * 2, 2000);
        continue;
      }
      idle_us = 50;
      const std::string bytes = receive(comm_, status);
      wire::Reader in(bytes);
      const int source = status.MPI_SOURCE;
      switch (status.MPI_TAG) {
        case wire::kRequest: on_request(source, static_cast<int>(in.integer())); break;
        case wire::kComplete: {
          const int q = static_cast<int>(in.integer());
          const int64_t id = in.integer();
          on_complete(source, q, id, in.text());
          break;
        }
        case wire::kFail: {
          const std::string host = in.text();
          const int64_t has_chunk = in.integer();
          const int q = static_cast<int>(in.integer());
          const int64_t id = in.integer();
          const std::string message = in.text();
          std::string where = concat("rank ", source, " (", host, ")");
          if (has_chunk && q >= 0 && q < static_cast<int>(states_.size())) {
            where += concat(", chunk ", id, " of queue ", states_[q].spec.name);
          }
          print_and_abort(where + ": " + message, kExitFailure);
        }
        case wire::kStop:
          if (!stopping_) begin_stop("signal on rank " + std::to_string(source));
          break;
        case wire::kBye: ++byes_; break;
        default: print_and_abort(concat("coordinator: unexpected message tag ", status.MPI_TAG, " from rank ", source), 1);
      }
    }
    log_progress(true);
  }

  RunSummary summary() const {
    RunSummary s;
    bool incomplete = false;
    for (const auto& q : states_) {
      s.queues.push_back({q.spec.name, static_cast<int64_t>(q.spec.chunks.size()), q.completed});
      if (q.completed < static_cast<int64_t>(q.spec.chunks.size())) incomplete = true;
    }
    s.stopped = stopping_ && incomplete;
    return s;
  }

  const CoordinatorHooks& hooks() const { return hooks_; }

 private:
  struct QueueState {
    WorkQueue spec;
    std::map<int64_t, size_t> index_of;  // chunk id -> position in spec.chunks
    std::vector<bool> handed;
    std::deque<size_t> ready;                       // positions available to hand out, in order
    std::map<int64_t, std::string> dependency_results;  // kept until the chunk is handed out
    std::vector<int> dependents;
    std::deque<int> waiting;  // ranks waiting for a chunk of this queue
    int64_t handed_count = 0;
    int64_t completed = 0;
    int64_t logged_completed = -1;
    Clock::time_point first_handed{};
  };

  void reply(int rank, int64_t kind, int q = 0, const ChunkSpec* chunk = nullptr, const std::string& dep = "") {
    wire::Writer out;
    out.put(kind);
    if (chunk) out.put(static_cast<int64_t>(q)).put(chunk->id).put(chunk->input).put(dep);
    send(reply_comm_, rank, wire::kReply, out.bytes());
  }

  // Answers one request for queue q if possible; returns false when the rank must wait.
  bool serve(int rank, int q) {
    QueueState& s = states_[q];
    if (stopping_) {
      reply(rank, wire::kStopped);
      return true;
    }
    if (!s.ready.empty()) {
      const size_t i = s.ready.front();
      s.ready.pop_front();
      s.handed[i] = true;
      if (s.handed_count++ == 0) s.first_handed = Clock::now();
      const ChunkSpec& chunk = s.spec.chunks[i];
      std::string dep;
      if (auto it = s.dependency_results.find(chunk.id); it != s.dependency_results.end()) {
        dep = std::move(it->second);
        s.dependency_results.erase(it);
      }
      reply(rank, wire::kChunk, q, &chunk, dep);
      return true;
    }
    if (s.handed_count == static_cast<int64_t>(s.spec.chunks.size())) {
      // Everything is handed out: the rest is in flight elsewhere and is not reassigned.
      reply(rank, wire::kDone);
      return true;
    }
    return false;
  }

  void on_request(int rank, int q) {
    if (q < 0 || q >= static_cast<int>(states_.size())) {
      print_and_abort(concat("rank ", rank, " asked for queue ", q, " but the job defined ", states_.size(),
                             " queue(s)"), kExitFailure);
    }
    if (!serve(rank, q)) states_[q].waiting.push_back(rank);
  }

  void on_complete(int rank, int q, int64_t id, std::string result) {
    QueueState& s = states_[q];
    ++s.completed;
    ChunkResult r{q, id, rank, std::move(result)};
    if (hooks_.on_result) {
      try {
        hooks_.on_result(r);
      } catch (const std::exception& e) {
        print_and_abort(concat("rank 0, storing the result of chunk ", id, " of queue ", s.spec.name, ": ", e.what()),
                        kExitFailure);
      }
    }
    for (int d : s.dependents) {
      QueueState& dep = states_[d];
      auto it = dep.index_of.find(id);
      if (it == dep.index_of.end() || dep.handed[it->second]) continue;
      dep.dependency_results[id] = r.result;
      dep.ready.push_back(it->second);
      while (!dep.waiting.empty() && serve(dep.waiting.front(), d)) dep.waiting.pop_front();
    }
    log_progress(false);
  }

  void begin_stop(const std::string& why) {
    stopping_ = true;
    int64_t in_flight = 0;
    for (const auto& s : states_) in_flight += s.handed_count - s.completed;
    spdlog::warn("stop requested ({}): no new chunks; waiting for {} chunk(s) in flight", why, in_flight);
    for (size_t q = 0; q < states_.size(); ++q) {
      for (int rank : states_[q].waiting) reply(rank, wire::kStopped);
      states_[q].waiting.clear();
    }
  }

  void log_progress(bool final_line) {
    const auto now = Clock::now();
    if (!final_line && std::chrono::duration<double>(now - last_progress_).count() < settings_.progress_interval_s) {
      return;
    }
    last_progress_ = now;
    for (auto& s : states_) {
      const int64_t total = static_cast<int64_t>(s.spec.chunks.size());
      if (total == 0 || s.handed_count == 0 || s.completed == s.logged_completed) continue;
      s.logged_completed = s.completed;
      const double elapsed = std::chrono::duration<double>(now - s.first_handed).count();
      const double rate = elapsed > 0 ? s.completed / elapsed : 0.0;
      if (s.completed == total) {
        spdlog::info("queue {}: {}/{} chunks done in {}", s.spec.name, s.completed, total, format_seconds(elapsed));
      } else {
        const std::string eta = rate > 0 ? format_seconds((total - s.completed) / rate) : "?";
        spdlog::info("queue {}: {}/{} chunks ({:.0f}%), {:.2f} chunks/s, ETA {}", s.spec.name, s.completed, total,
                     100.0 * s.completed / total, rate, eta);
      }
    }
  }

  MPI_Comm comm_;
  MPI_Comm reply_comm_;
  int size_;
  config::CoordinatorSettings settings_;
  CoordinatorHooks hooks_;
  std::vector<QueueState> states_;
  bool stopping_ = false;
  int byes_ = 0;
  Clock::time_point start_, last_progress_;
};

// ---------------------------------------------------------------------------------------------
// The client side, on every rank (rank 0 included: it talks to its own thread).
// ---------------------------------------------------------------------------------------------
Coordinator::Coordinator(const World& world, const config::CoordinatorSettings& settings,
                         std::vector<WorkQueue> queues, CoordinatorHooks hooks)
    : world_(world), comm_(Communicator::duplicate(world.comm())), reply_comm_(Communicator::duplicate(world.comm())) {
  MPI_CHECK(MPI_Comm_set_errhandler(comm_.get(), MPI_ERRORS_RETURN));
  MPI_CHECK(MPI_Comm_set_errhandler(reply_comm_.get(), MPI_ERRORS_RETURN));
  num_queues_ = static_cast<int>(queues.size());
  // Queue validation errors surface on rank 0 before any thread starts; agree() tells every rank.
  world.agree([&] {
    if (world.rank() == 0) {
      server_ = std::make_unique<Server>(comm_.get(), reply_comm_.get(), world.size(), settings, std::move(queues), std::move(hooks));
    }
  });
  MPI_CHECK(MPI_Bcast(&num_queues_, 1, MPI_INT, 0, comm_.get()));
  {
    std::lock_guard<std::mutex> lock(g_channel.mutex);
    g_channel.comm = comm_.get();
    g_channel.has_chunk = false;
  }
  if (server_) {
    server_thread_ = std::thread([this] {
      try {
        server_->run();
      } catch (const std::exception& e) {
        print_and_abort(concat("rank 0, coordinator: ", e.what()), kExitFailure);
      }
    });
  }
}

Coordinator::~Coordinator() {
  if (finished_) return;
  // An exception is unwinding: keep the channel alive for report_failure(), and let the server
  // thread run on until the process aborts.
  comm_.release();
  reply_comm_.release();
  if (server_thread_.joinable()) server_thread_.detach();
  (void)server_.release();
}

void Coordinator::send_stop_notice() {
  if (stop_notice_sent_) return;
  stop_notice_sent_ = true;
  send(comm_.get(), 0, wire::kStop, std::string());
}

std::optional<Chunk> Coordinator::next(int queue) {
  if (stopped_) return std::nullopt;
  if (stop_requested()) send_stop_notice();
  wire::Writer request;
  request.put(static_cast<int64_t>(queue));
  send(comm_.get(), 0, wire::kRequest, request.bytes());
  // Wait for the reply while watching for a stop signal (a dependent queue can wait long).
  MPI_Status status;
  int flag = 0;
  int idle_us = 50;
  for (;;) {
    MPI_CHECK(MPI_Iprobe(0, wire::kReply, reply_comm_.get(), &flag, &status));
    if (flag) break;
    if (stop_requested()) send_stop_notice();
    std::this_thread::sleep_for(std::chrono::microseconds(idle_us));
    idle_us = std::min(idle_us * 2, 2000);
  }
  const std::string bytes = receive(reply_comm_.get(), status);
  wire::Reader in(bytes);
  const int64_t kind = in.integer();
  if (kind == wire::kStopped) {
    stopped_ = true;
    return std::nullopt;
  }
  if (kind == wire::kDone) return std::nullopt;
  Chunk c;
  c.queue = static_cast<int>(in.integer());
  c.id = in.integer();
  c.input = in.text();
  c.dependency_result = in.text();
  std::lock_guard<std::mutex> lock(g_channel.mutex);
  g_channel.has_chunk = true;
  g_channel.queue = c.queue;
  g_channel.chunk = c.id;
  return c;
}

void Coordinator::complete(const Chunk& chunk, const std::string& result) {
  wire::Writer out;
  out.put(static_cast<int64_t>(chunk.queue)).put(chunk.id).put(result);
  send(comm_.get(), 0, wire::kComplete, out.bytes());
  std::lock_guard<std::mutex> lock(g_channel.mutex);
  g_channel.has_chunk = false;
}

RunSummary Coordinator::finish() {
  send(comm_.get(), 0, wire::kBye, std::string());
  RunSummary summary;
  wire::Writer out;
  if (world_.rank() == 0) {
    server_thread_.join();
    summary = server_->summary();
    if (summary.stopped && server_->hooks().on_stop) server_->hooks().on_stop(summary);
    out.put(static_cast<int64_t>(summary.stopped)).put(static_cast<int64_t>(summary.queues.size()));
    for (const auto& q : summary.queues) out.put(q.name).put(q.total).put(q.completed);
  }
  std::string bytes = out.bytes();
  int64_t length = static_cast<int64_t>(bytes.size());
  MPI_CHECK(MPI_Bcast(&length, 1, MPI_INT64_T, 0, comm_.get()));
  bytes.resize(length);
  MPI_CHECK(MPI_Bcast(bytes.data(), static_cast<int>(length), MPI_BYTE, 0, comm_.get()));
  if (world_.rank() != 0) {
    wire::Reader in(bytes);
    summary.stopped = in.integer() != 0;
    const int64_t n = in.integer();
    for (int64_t i = 0; i < n; ++i) {
      QueueSummary q;
      q.name = in.text();
      q.total = in.integer();
      q.completed = in.integer();
      summary.queues.push_back(q);
    }
  }
  stopped_ = summary.stopped;
  {
    std::lock_guard<std::mutex> lock(g_channel.mutex);
    g_channel.comm = MPI_COMM_NULL;
    g_channel.has_chunk = false;
  }
  finished_ = true;
  return summary;
}

void report_failure(const std::string& message, int rank, const std::string& host) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  MPI_Comm comm = MPI_COMM_NULL;
  bool has_chunk = false;
  int queue = 0;
  int64_t chunk = 0;
  {
    std::lock_guard<std::mutex> lock(g_channel.mutex);
    comm = g_channel.comm;
    has_chunk = g_channel.has_chunk;
    queue = g_channel.queue;
    chunk = g_channel.chunk;
  }
  if (!initialized || finalized) {
    std::fprintf(stderr, "gpujob: error: %s\n", message.c_str());
    std::fflush(stderr);
    std::_Exit(kExitFailure);
  }
  if (comm != MPI_COMM_NULL && rank != 0) {
    wire::Writer out;
    out.put(host).put(static_cast<int64_t>(has_chunk)).put(static_cast<int64_t>(queue)).put(chunk).put(message);
    const std::string& bytes = out.bytes();
    MPI_Request request;
    if (MPI_Isend(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, 0, wire::kFail, comm, &request) ==
        MPI_SUCCESS) {
      // Rank 0 prints the line and aborts the job, this rank included; give it a few seconds.
      const auto deadline = Clock::now() + std::chrono::seconds(10);
      int done = 0;
      while (Clock::now() < deadline) {
        if (!done) MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  }
  std::string where = concat("rank ", rank, " (", host, ")");
  if (has_chunk) where += concat(", chunk ", chunk, " of queue ", queue);
  print_and_abort(where + ": " + message, kExitFailure);
}

}  // namespace gpujob::cluster
