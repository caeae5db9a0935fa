// The generation stage shared by job generate and the activation pipeline (cache_activations,
// sweep): rank 0 keeps the completion cache (what is stored, which chunks are missing, every
// finished chunk appended durably as it arrives), and the generator ranks run the chunks handed
// to them. A rerun generates only what the cache lacks; a run that stops or crashes loses at most
// the chunks in flight.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpujob/cluster/coordinator.hpp"
#include "gpujob/io/generation_cache.hpp"
#include "jobs/activation_pipeline.hpp"
#include "jobs/job_registry.hpp"

namespace gpujob::jobs {

// Rank 0's view of the cache for one run. Thread-safe: record() runs on the coordinator thread.
class CompletionStore {
 public:
  // Opens (or creates) the cache entry of the pipeline's key and loads what it holds; logs how
  // many samples are stored and how many chunks remain.
  explicit CompletionStore(const ActivationPipeline& pipeline);

  const io::GenerationCache& cache() const { return *cache_; }
  const std::vector<int64_t>& missing_chunks() const { return missing_; }
  // The "generate" work queue: the missing chunks.
  cluster::WorkQueue work_queue() const;
  // A generator's result for a chunk: appended to the cache (durable) before it is kept here.
  void record(const cluster::ChunkResult& result);
  // What is stored now (a copy taken under the lock).
  std::map<std::string, io::CachedSample> stored() const;

 private:
  const ActivationPipeline& pipeline_;
  std::unique_ptr<io::GenerationCache> cache_;
  std::vector<int64_t> missing_;
  mutable std::mutex mutex_;
  std::map<std::string, io::CachedSample> stored_;
};

// A generator rank's loop over the chunks of `queue`: loads the model (only when there is a chunk
// to do), sizes its KV cache once, and returns each chunk's completions to the coordinator.
void run_generator(JobContext& context, const ActivationPipeline& pipeline, cluster::Coordinator& coordinator,
                   int queue);

}  // namespace gpujob::jobs
