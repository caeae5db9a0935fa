#include "jobs/generation_stage.hpp"

#include <spdlog/spdlog.h>

#include "jobs/generate.hpp"
#include "jobs/model_setup.hpp"

namespace gpujob::jobs {

CompletionStore::CompletionStore(const ActivationPipeline& pipeline)
    : pipeline_(pipeline),
      cache_(std::make_unique<io::GenerationCache>(pipeline.cache_dir(), pipeline.cache_key())) {
  stored_ = load_cache_by_id(*cache_);
  missing_ = pipeline.chunks_to_generate(stored_);
  spdlog::info("generation cache {}: {} of {} samples stored, {} chunks to generate", cache_->directory(),
               stored_.size(), pipeline.num_samples(), missing_.size());
}

cluster::WorkQueue CompletionStore::work_queue() const {
  cluster::WorkQueue queue{"generate", {}, -1, {}};
  for (int64_t c : missing_) queue.chunks.push_back({c, ""});
  return queue;
}

void CompletionStore::record(const cluster::ChunkResult& result) {
  auto records = pipeline_.cache_records(result.id, result.result);
  cache_->append(records);  // durable before the chunk counts as generated
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& r : records) stored_[r.id] = std::move(r);
}

std::map<std::string, io::CachedSample> CompletionStore::stored() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stored_;
}

void run_generator(JobContext& context, const ActivationPipeline& pipeline, cluster::Coordinator& coordinator,
                   int queue) {
  const auto* role = context.self.find(config::Role::generator);
  const auto& cfg = context.config;
  auto chunk = coordinator.next(queue);
  if (!chunk) return;  // everything is cached: the model is never loaded
  auto decoder = load_decoder(cfg.model, role->gpu, role->memory_fraction);
  const auto options = generator_options(cfg.generation, cfg.model.path, pipeline.tokenizer());
  const auto& samples = pipeline.data().samples;
  auto slots = make_generator_slots(*decoder, cfg.generation, static_cast<int64_t>(samples.size()),
                                    kv_cache_length(samples, cfg.generation));
  for (; chunk; chunk = coordinator.next(queue)) {
    coordinator.complete(*chunk, pipeline.generate_chunk(*slots, options, chunk->id));
  }
}

}  // namespace gpujob::jobs
