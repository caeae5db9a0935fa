#include "jobs/cache_activations.hpp"

#include <spdlog/spdlog.h>

#include <climits>
#include <filesystem>
#include <memory>
#include <mutex>
#include <map>
#include <optional>
#include <set>

#include "gpujob/cluster/coordinator.hpp"
#include "gpujob/cluster/mpi_check.hpp"
#include "gpujob/cluster/stop_signal.hpp"
#include "gpujob/model/device.hpp"
#include "gpujob/model/generator.hpp"
#include "gpujob/util/error.hpp"
#include "jobs/activation_pipeline.hpp"
#include "jobs/extraction.hpp"
#include "jobs/generation_stage.hpp"
#include "jobs/generate.hpp"
#include "jobs/model_setup.hpp"
#include "jobs/probe_sweep.hpp"

namespace gpujob::jobs {
namespace {

using config::Role;

// Chunks finished in an earlier run, as the extractors' file records them, known on every rank.
std::vector<int64_t> share_completed_chunks(const cluster::World& world, int first_extractor,
                                            const std::optional<io::ActivationFile>& file) {
  std::vector<int64_t> done;
  if (file) done.assign(file->completed_chunks().begin(), file->completed_chunks().end());
  int64_t count = static_cast<int64_t>(done.size());
  MPI_CHECK(MPI_Bcast(&count, 1, MPI_INT64_T, first_extractor, world.comm()));
  done.resize(count);
  MPI_CHECK(MPI_Bcast(done.data(), static_cast<int>(count), MPI_INT64_T, first_extractor, world.comm()));
  return done;
}

int lowest_rank_with(const cluster::World& world, bool flag) {
  int mine = flag ? world.rank() : INT_MAX;
  int lowest = INT_MAX;
  MPI_CHECK(MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, world.comm()));
  return lowest;
}

// The generator phase (run_generator, jobs/generation_stage) holds its model and KV cache only
// inside it, so an overlapping extractor phase on the same GPU starts with that memory released.

void run_extractor(JobContext& context, const ActivationPipeline& pipeline, cluster::Coordinator& coordinator,
                   int queue, io::ActivationFile& file) {
  const auto* role = context.self.find(Role::extractor);
  const auto& cfg = context.config;
  auto first = coordinator.next(queue);
  if (!first) return;  // the file is complete: the model is never loaded
  auto decoder = load_decoder(cfg.model, role->gpu, role->memory_fraction);
  const auto request = capture_request(cfg.extract, pipeline.special_token_ids());
  int64_t batch_size = std::max(1, cfg.extract.batch_size);  // shrinks for good after an out-of-memory
  // File writes run beside the next chunk's forward passes. A few batches may wait (their rows are
  // held until written). A chunk reported complete to the coordinator may still be in the queue:
  // the file's own record, written last, is what a resumed run trusts.
  BackgroundWorker writer(4);
  for (auto chunk = first; chunk; chunk = coordinator.next(queue)) {
    const auto range = pipeline.chunk(chunk->id);
    extract_chunk(*decoder, request, pipeline.sequences(chunk->id, chunk->dependency_result), range.first,
                  chunk->id, batch_size, file, writer);
    coordinator.complete(*chunk, "");
  }
  writer.drain();  // every queued write done before the file is finalized or closed
}

int run_activation_pipeline(JobContext& context, bool with_generation, bool probe_after) {
  const auto& cfg = context.config;
  cluster::World& world = context.world;

  std::unique_ptr<ActivationPipeline> pipeline;
  world.agree([&] { pipeline = std::make_unique<ActivationPipeline>(cfg, with_generation); });

  const bool extractor = context.self.has(Role::extractor);
  const bool generator = with_generation && context.self.has(Role::generator);
  const int first_extractor = lowest_rank_with(world, extractor);
  if (first_extractor == INT_MAX) {
    cfg.source.fail("layout.roles.extractor", "job ", config::name(cfg.job), " needs at least one extractor rank");
  }
  if (with_generation && lowest_rank_with(world, generator) == INT_MAX) {
    cfg.source.fail("layout.roles.generator", "job ", config::name(cfg.job), " needs at least one generator rank");
  }

  // The extractors create (or reopen to finish) the one HDF5 file, collectively.
  cluster::Communicator extract_comm =
      cluster::Communicator::split(world.comm(), extractor ? 0 : MPI_UNDEFINED, world.rank());
  std::optional<io::ActivationFile> file;
  const std::string h5_path = pipeline->output_path();
  world.agree([&] {
    if (!extractor) return;
    std::filesystem::path parent = std::filesystem::path(h5_path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    file.emplace(io::ActivationFile::create_or_resume(h5_path, pipeline->file_spec(), extract_comm.get()));
  });
  const auto extracted = share_completed_chunks(world, first_extractor, file);
  const std::set<int64_t> extracted_set(extracted.begin(), extracted.end());

  // Rank 0 decides the work: completions missing from the cache, chunks missing from the file.
  std::unique_ptr<CompletionStore> completions;
  std::vector<cluster::WorkQueue> queues;
  const int generate_queue = with_generation ? 0 : -1;
  const int extract_queue = with_generation ? 1 : 0;
  if (world.rank() == 0) {
    std::set<int64_t> pending;
    std::map<std::string, io::CachedSample> stored;
    if (with_generation) {
      completions = std::make_unique<CompletionStore>(*pipeline);
      queues.push_back(completions->work_queue());
      pending.insert(completions->missing_chunks().begin(), completions->missing_chunks().end());
      stored = completions->stored();
    }
    cluster::WorkQueue extract{"extract", {}, with_generation ? generate_queue : -1, {}};
    for (int64_t c = 0; c < pipeline->num_chunks(); ++c) {
      if (extracted_set.count(c)) continue;
      extract.chunks.push_back({c, ""});
      if (with_generation && !pending.count(c)) extract.prior_results[c] = pipeline->payload_from_cache(c, stored);
    }
    spdlog::info("activation file {}: {} of {} chunks done, {} to extract", h5_path, extracted_set.size(),
                 pipeline->num_chunks(), extract.chunks.size());
    queues.push_back(std::move(extract));
  }

  cluster::CoordinatorHooks hooks;
  if (with_generation && completions) {
    hooks.on_result = [&](const cluster::ChunkResult& result) {
      if (result.queue == generate_queue) completions->record(result);
    };
  }
  cluster::Coordinator coordinator(world, cfg.coordinator, std::move(queues), hooks);
  if (generator) run_generator(context, *pipeline, coordinator, generate_queue);
  model::release_cached_device_memory();
  if (extractor) run_extractor(context, *pipeline, coordinator, extract_queue, *file);
  const cluster::RunSummary summary = coordinator.finish();

  if (summary.stopped) {
    if (file) file->close();
    if (world.rank() == 0) {
      spdlog::warn("stopped: finished chunks are recorded in {} and {}; rerun the same command to continue",
                   completions ? completions->cache().completions_path() : std::string("(no cache)"), h5_path);
    }
    return cluster::kExitStopped;
  }
  if (file) file->finalize();
  MPI_CHECK(MPI_Barrier(world.comm()));  // the parallel file is closed everywhere before rank 0 adds strings

  if (world.rank() == 0) {
    pipeline->write_sample_strings(completions ? completions->stored() : std::map<std::string, io::CachedSample>{});
    spdlog::info("activations: {}", h5_path);
    if (completions) spdlog::info("completions: {}", completions->cache().completions_path());
    if (probe_after) {
      const auto files = run_probe_sweep(cfg, h5_path);
      spdlog::info("sweep summary: {} ({} and {})", files.text, files.csv, files.svg);
    }
  }
  return 0;
}

}  // namespace

int run_extract_job(JobContext& context) { return run_activation_pipeline(context, false, false); }
int run_cache_activations_job(JobContext& context) { return run_activation_pipeline(context, true, false); }
int run_sweep_job(JobContext& context) { return run_activation_pipeline(context, true, true); }

}  // namespace gpujob::jobs
