// Coordinator: rank 0 hands out chunks of work on request (dynamic balancing) and gathers results;
// a second queue can depend on a first one chunk by chunk (generation feeding extraction).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gpujob/cluster/communicator.hpp"
#include "gpujob/cluster/world.hpp"
#include "gpujob/config/run_config.hpp"

namespace gpujob::cluster {

// One unit of work as the job defines it; payloads are opaque bytes (JSON by convention).
struct ChunkSpec {
  int64_t id = 0;     // unique in its queue; chunk X of a dependent queue waits for chunk X of its dependency
  std::string input;  // what the worker needs (e.g. JSON with sample indices)
};

struct WorkQueue {
  std::string name;              // for progress lines and errors ("generate", "extract")
  std::vector<ChunkSpec> chunks;  // handed out in this order
  int depends_on = -1;            // index of an earlier queue, or -1
  // Results of the dependency's chunks finished in an earlier run (resume): those chunks of this
  // queue are available at once and receive these payloads.
  std::map<int64_t, std::string> prior_results;
};

// A chunk handed to a worker.
struct Chunk {
  int queue = 0;
  int64_t id = 0;
  std::string input;
  std::string dependency_result;  // the dependency's result for this chunk id (dependent queues only)
};

struct ChunkResult {
  int queue = 0;
  int64_t id = 0;
  int rank = 0;  // the worker that completed it
  std::string result;
};

struct QueueSummary {
  std::string name;
  int64_t total = 0;      // chunks in the queue this run
  int64_t completed = 0;  // chunks whose result arrived
};

struct RunSummary {
  bool stopped = false;  // a stop signal ended the run early; in-flight chunks were completed
  std::vector<QueueSummary> queues;
};

// Called on rank 0 only, on the coordinator thread (serialise with rank 0's own worker if they
// share state).
struct CoordinatorHooks {
  std::function<void(const ChunkResult&)> on_result;  // each result as it arrives, e.g. append to a cache
  std::function<void(const RunSummary&)> on_stop;     // after a stop, once in-flight chunks are in
};

class Coordinator {
 public:
  // Collective over the world. `queues` and `hooks` are used on rank 0 only (other ranks pass
  // nothing); every rank learns the number of queues. Starts the coordinator thread on rank 0.
  Coordinator(const World& world, const config::CoordinatorSettings& settings, std::vector<WorkQueue> queues = {},
              CoordinatorHooks hooks = {});
  // Without finish() (an exception is unwinding) the channel stays registered so that
  // report_failure() can still reach rank 0.
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // The next chunk of `queue` for this rank, or nothing when the queue is finished or the run is
  // stopping. For a dependent queue it waits until a chunk becomes available.
  std::optional<Chunk> next(int queue);
  void complete(const Chunk& chunk, const std::string& result);

  // Whether a stop (signal on any rank) ended the hand-out early.
  bool stopped() const { return stopped_; }
  int num_queues() const { return num_queues_; }

  // Collective: every rank says it is done; rank 0 waits for all, calls on_stop when stopped, and
  // every rank gets the summary.
  RunSummary finish();

 private:
  class Server;
  void send_stop_notice();

  const World& world_;
  Communicator comm_;        // requests to rank 0: a private duplicate, so job traffic never mixes in
  Communicator reply_comm_;  // replies from rank 0: separate, so rank 0's server never receives its own replies
  int num_queues_ = 0;
  bool stopped_ = false;
  bool stop_notice_sent_ = false;
  bool finished_ = false;
  std::unique_ptr<Server> server_;  // rank 0 only
  std::thread server_thread_;
};

// Reports a failure of this rank and ends the whole job (MPI_Abort with status 1). While a
// coordinator runs, the message goes to rank 0 with this rank, its host and the chunk in hand,
// and rank 0 prints the one line; otherwise (or when rank 0 does not react within a few seconds)
// this rank prints it itself.
[[noreturn]] void report_failure(const std::string& message, int rank, const std::string& host);

}  // namespace gpujob::cluster
