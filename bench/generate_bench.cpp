// Generation throughput: gpujob's continuous-batching generator over random prompts, every
// completion exactly --new tokens long (EOS ignored), as generated tokens per second, for
// BENCHMARKS.md. The clock covers prefill and decode of every prompt. A second rate covers the
// decode steps alone: the tokens after the first model call (the prefill of every prompt that
// fits one call, which also yields each one's first token) over the time after it, the rate the
// bandwidth limit of a decode step bounds.
//
//   generate_bench MODEL_DIR [--batch 32] [--prompts 32] [--prompt-len 256] [--new 128]
//                  [--dtype bfloat16] [--device cuda] [--warmup-prompts N] [--graphs 1] [--fused 1]
//                  [--trace FILE.json] [--step-only N]
//
// Before the timed run, one untimed generation of --warmup-prompts other prompts (default 0: as
// many as --prompts), as hf_baselines.py generate runs HF generate once before timing it: the
// CUDA graphs of the batch's decode steps are captured and the allocator holds its memory then.
// (With 2 warm-up prompts the timed batch-32 run paid for both: 3,870-3,954 tok/s against
// 4,432-4,449 on an H200.)
// --graphs 0 decodes every step eagerly per call (Decoder::forward_cached); 1 (default) lets the
// generator's slot model replay steps from CUDA graphs as the generate job does. --fused: as in
// forward_bench (stacked GEMMs and fused kernels, model.fused_kernels). --trace writes a device
// trace of one more generation of the same prompts after the timed one (bench/trace_summary.py).
// --step-only N then times N decode steps of all --batch slots (positions halfway through the
// completions) through the same step path as the generator's (DecodeGraphs), queued back to back
// without reading anything, and again reading each step's greedy tokens to the host before the
// next: against the generator's decode step, what the host's part of a step costs (one process
// only; a sharded run leaves it out).
//
// Tensor parallel: under mpirun every rank holds one shard of the model (shards = ranks; on CUDA
// rank r uses GPU r and the shards reduce over NCCL, on the CPU over MPI), every rank runs the same
// generation and rank 0 reports, with the bytes of weights each shard reads per decode step:
//
//   mpirun -np 2 generate_bench MODEL_DIR --batch 1 --prompts 1
//
// Every run prints a digest of the completions' tokens, so a sharded run can be checked against
// one process. Without mpirun, MPI is not touched. A sharded run has no out-of-memory recovery
// (the generator's halving would run on one shard only): choose a batch that fits.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "bench_args.hpp"
#include "kineto_trace.hpp"
#include "gpujob/cluster/shard_collectives.hpp"
#include "gpujob/cluster/world.hpp"
#include "gpujob/io/fingerprint.hpp"
#include "gpujob/util/log.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/kv_cache_plan.hpp"
#include "gpujob/model/device.hpp"
#include "gpujob/model/decode_graphs.hpp"
#include "gpujob/model/decoder_slot_model.hpp"
#include "gpujob/model/generator.hpp"

namespace {

// The ranks of an mpirun launch as the shards of one model; one shard without mpirun.
struct ShardGroup {
  std::optional<gpujob::cluster::World> world;
  int rank = 0, size = 1;
  std::unique_ptr<gpujob::model::Collectives> collectives;

  ShardGroup(int* argc, char*** argv) {
    if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr && std::getenv("PMI_SIZE") == nullptr) return;
    world.emplace(argc, argv);
    rank = world->rank();
    size = world->size();
  }
  // After the rank's device is bound (NCCL takes the current device).
  void connect(bool cuda) {
    if (size == 1) return;
    gpujob::cluster::Communicator group = gpujob::cluster::Communicator::split(MPI_COMM_WORLD, 0, rank);
    collectives = gpujob::cluster::make_shard_collectives(group, cuda, rank);
  }
  ~ShardGroup() { collectives.reset(); }  // before the world finalizes MPI
};

// The completions' token ids in request order, hashed (FNV-1a), each completion ended by a newline.
std::string digest(const std::vector<gpujob::model::Completion>& completions) {
  std::string ids;
  for (const auto& c : completions) {
    for (const int64_t id : c.ids) ids += std::to_string(id) + ' ';
    ids += '\n';
  }
  return gpujob::io::fnv1a64_hex(ids);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gpujob;
  ShardGroup shards(&argc, &argv);
  init_logging(shards.size > 1 ? shards.rank : -1);  // the jobs' log format and GPUJOB_LOG_LEVEL
  const bench::Args args(argc, argv,
                         {{"batch", "32"}, {"prompts", "32"}, {"prompt-len", "256"}, {"new", "128"},
                          {"dtype", "bfloat16"}, {"device", "cuda"}, {"warmup-prompts", "0"}, {"graphs", "1"}, {"fused", "1"},
                          {"fold-norms", "1"}, {"split-linear", "1"}, {"trace", ""}, {"step-only", "0"}},
                         "usage: generate_bench MODEL_DIR [--batch B] [--prompts N] [--prompt-len T] [--new K] "
                         "[--dtype bfloat16|float16|float32] [--device cuda|cpu] [--warmup-prompts N] [--graphs 0|1] [--fused 0|1] "
                         "[--fold-norms 0|1] [--split-linear 0|1] [--trace FILE.json] [--step-only N]");
  model::LoadOptions load;
  load.dtype = args.text("dtype") == "float32" ? at::kFloat : args.text("dtype") == "float16" ? at::kHalf : at::kBFloat16;
  const bool cuda = args.text("device") == "cuda";
  load.device = model::bind_device(cuda, shards.rank, 1.0);
  shards.connect(cuda);
  load.shard_index = shards.rank;
  load.shard_count = shards.size;
  load.collectives = shards.collectives.get();
  auto decoder = model::Decoder::load(args.model_dir(), load);
  decoder->set_fused_ops(args.integer("fused") != 0);
  decoder->set_fold_norms(args.integer("fold-norms") != 0);
  decoder->set_split_linear(args.integer("split-linear") != 0);

  const int64_t prompt_len = args.integer("prompt-len"), new_tokens = args.integer("new");
  model::DecoderSlotModel slots(*decoder, args.integer("batch"), model::slot_positions_needed(prompt_len, new_tokens),
                                args.integer("graphs") != 0 ? model::SlotDecode::kAuto : model::SlotDecode::kPerCall);
  model::GeneratorOptions options;
  options.stop.max_new_tokens = new_tokens;
  options.stop.ignore_eos = true;
  options.max_prefill_tokens = 8192;
  // The end of the timed run's first model call and the tokens it had produced by then.
  bool timing = false;
  std::chrono::steady_clock::time_point first_call_end;
  int64_t first_call_tokens = -1;
  options.progress = [&](const model::GenerationProgress& progress) {
    if (!timing || first_call_tokens >= 0) return;
    first_call_end = std::chrono::steady_clock::now();
    first_call_tokens = progress.tokens_generated;
  };
  model::Generator generator(slots, options);

  auto requests_of = [&](int64_t count, uint64_t seed) {
    std::vector<model::GenerationRequest> requests;
    for (auto& ids : bench::random_sequences(count, prompt_len, decoder->config().vocab_size, seed)) {
      requests.push_back({ids, static_cast<uint64_t>(requests.size())});
    }
    return requests;
  };
  const int64_t warmup = args.integer("warmup-prompts");
  (void)generator.generate(requests_of(warmup > 0 ? warmup : args.integer("prompts"), 7));

  const auto requests = requests_of(args.integer("prompts"), 1234);
  timing = true;
  const auto t0 = std::chrono::steady_clock::now();
  const auto completions = generator.generate(requests);
  const auto t1 = std::chrono::steady_clock::now();
  timing = false;
  const double seconds = std::chrono::duration<double>(t1 - t0).count();
  if (shards.rank != 0) {  // the shards ran the same generation; rank 0 reports it
    if (!args.text("trace").empty()) (void)generator.generate(requests);
    return 0;
  }
  int64_t generated = 0;
  for (const auto& c : completions) generated += static_cast<int64_t>(c.ids.size());
  std::printf("gpujob generate batch=%lld prompts=%lld prompt_len=%lld new=%lld dtype=%s graphs=%s fused=%lld: %.1f tok/s "
              "(%lld tokens in %.2f s)\n",
              static_cast<long long>(args.integer("batch")), static_cast<long long>(requests.size()),
              static_cast<long long>(prompt_len), static_cast<long long>(new_tokens), args.text("dtype").c_str(),
              slots.uses_cuda_graphs() ? "on" : "off", static_cast<long long>(args.integer("fused")),
              static_cast<double>(generated) / seconds, static_cast<long long>(generated), seconds);
  if (first_call_tokens >= 0 && generated > first_call_tokens) {
    const double after = std::chrono::duration<double>(t1 - first_call_end).count();
    std::printf("  decode steps: %.1f tok/s (%lld tokens in %.3f s after the first call, which took %.3f s and gave "
                "%lld)\n",
                static_cast<double>(generated - first_call_tokens) / after,
                static_cast<long long>(generated - first_call_tokens), after, seconds - after,
                static_cast<long long>(first_call_tokens));
  }
  std::printf("  completions digest: %s\n", digest(completions).c_str());
  if (shards.size > 1) {
    // Each shard reads its 1/N of the blocks and the whole (replicated) LM head, not the embedding.
    const model::ModelConfig& c = decoder->config();
    const double table = static_cast<double>(c.vocab_size * c.hidden_size * c10::elementSize(load.dtype));
    const double blocks = static_cast<double>(model::decoder_weight_bytes(c, load.dtype)) -
                          table * (c.tie_word_embeddings ? 1 : 2);
    std::printf("  tensor parallel: %d shards, %.3g GB of weights read per decode step on each\n", shards.size,
                (blocks / shards.size + table) / 1e9);
  }
  // Folded norms (--fold-norms 1): blocks that ran folded, counted when a graph is captured.
  if (decoder->folded_blocks() > 0)
    std::printf("  folded norms: %lld blocks\n", static_cast<long long>(decoder->folded_blocks()));
  // Split o and down layers (--split-linear 1): blocks that ran so, counted as folded norms are.
  if (decoder->split_blocks() > 0)
    std::printf("  split linear: %lld blocks\n", static_cast<long long>(decoder->split_blocks()));
  if (!args.text("trace").empty()) {
    bench::KinetoTrace trace(args.text("trace"));
    (void)generator.generate(requests);
  }
  if (const int64_t steps = args.integer("step-only"); steps > 0 && shards.size == 1) {
    const int64_t batch = args.integer("batch");
    model::KvCache cache = decoder->make_kv_cache(batch, model::slot_positions_needed(prompt_len, new_tokens));
    model::DecodeGraphs graphs(*decoder, cache, args.integer("graphs") != 0);
    const std::vector<int64_t> ids(batch, decoder->config().vocab_size / 2), positions(batch, prompt_len + new_tokens / 2);
    const int64_t key_len = decoder->attended_key_length(positions[0] + 1, cache.max_len());
    const auto per_step = [&](bool read_tokens) {
      (void)graphs.step(ids, positions, key_len);  // the capture, once
      model::wait_for_device(load.device);
      const auto start = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < steps; ++i) {
        const at::Tensor logits = graphs.step(ids, positions, key_len);
        if (read_tokens) (void)logits.argmax(-1).to(at::kCPU);
      }
      model::wait_for_device(load.device);
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
    };
    const double queued = per_step(false), read = per_step(true);
    std::printf("  decode step of %lld slots: %.3f ms queued back to back, %.3f ms reading its tokens before the next "
                "(%lld steps each)\n",
                static_cast<long long>(batch), queued * 1e3, read * 1e3, static_cast<long long>(steps));
  }
  return 0;
}
