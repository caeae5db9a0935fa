// Generation throughput: gpujob's continuous-batching generator over random prompts, every
// completion exactly --new tokens long (EOS ignored), as generated tokens per second, for
// BENCHMARKS.md. The clock covers prefill and decode of every prompt.
//
//   generate_bench MODEL_DIR [--batch 32] [--prompts 32] [--prompt-len 256] [--new 128]
//                  [--dtype bfloat16] [--device cuda] [--warmup-prompts 2] [--graphs 1] [--fused 1]
//                  [--trace FILE.json]
//
// --graphs 0 decodes every step eagerly per call (Decoder::forward_cached); 1 (default) lets the
// generator's slot model replay steps from CUDA graphs as the generate job does. --fused: as in
// forward_bench (stacked GEMMs and fused kernels, model.fused_kernels). --trace writes a device
// trace of one more generation of the same prompts after the timed one (bench/trace_summary.py).
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>

#include "bench_args.hpp"
#include "kineto_trace.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/device.hpp"
#include "gpujob/model/decoder_slot_model.hpp"
#include "gpujob/model/generator.hpp"

int main(int argc, char** argv) {
  using namespace gpujob;
  const bench::Args args(argc, argv,
                         {{"batch", "32"}, {"prompts", "32"}, {"prompt-len", "256"}, {"new", "128"},
                          {"dtype", "bfloat16"}, {"device", "cuda"}, {"warmup-prompts", "2"}, {"graphs", "1"}, {"fused", "1"}, {"trace", ""}},
                         "usage: generate_bench MODEL_DIR [--batch B] [--prompts N] [--prompt-len T] [--new K] "
                         "[--dtype bfloat16|float16|float32] [--device cuda|cpu] [--warmup-prompts N] [--graphs 0|1] [--fused 0|1] [--trace FILE.json]");
  model::LoadOptions load;
  load.dtype = args.text("dtype") == "float32" ? at::kFloat : args.text("dtype") == "float16" ? at::kHalf : at::kBFloat16;
  load.device = model::bind_device(args.text("device") == "cuda", 0, 1.0);
  auto decoder = model::Decoder::load(args.model_dir(), load);
  decoder->set_fused_ops(args.integer("fused") != 0);

  const int64_t prompt_len = args.integer("prompt-len"), new_tokens = args.integer("new");
  model::DecoderSlotModel slots(*decoder, args.integer("batch"), model::slot_positions_needed(prompt_len, new_tokens),
                                args.integer("graphs") != 0 ? model::SlotDecode::kAuto : model::SlotDecode::kPerCall);
  model::GeneratorOptions options;
  options.stop.max_new_tokens = new_tokens;
  options.stop.ignore_eos = true;
  options.max_prefill_tokens = 8192;
  model::Generator generator(slots, options);

  auto requests_of = [&](int64_t count, uint64_t seed) {
    std::vector<model::GenerationRequest> requests;
    for (auto& ids : bench::random_sequences(count, prompt_len, decoder->config().vocab_size, seed)) {
      requests.push_back({ids, static_cast<uint64_t>(requests.size())});
    }
    return requests;
  };
  (void)generator.generate(requests_of(args.integer("warmup-prompts"), 7));

  const auto requests = requests_of(args.integer("prompts"), 1234);
  const auto t0 = std::chrono::steady_clock::now();
  const auto completions = generator.generate(requests);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t generated = 0;
  for (const auto& c : completions) generated += static_cast<int64_t>(c.ids.size());
  std::printf("gpujob generate batch=%lld prompts=%lld prompt_len=%lld new=%lld dtype=%s graphs=%s fused=%lld: %.1f tok/s "
              "(%lld tokens in %.2f s)\n",
              static_cast<long long>(args.integer("batch")), static_cast<long long>(requests.size()),
              static_cast<long long>(prompt_len), static_cast<long long>(new_tokens), args.text("dtype").c_str(),
              slots.uses_cuda_graphs() ? "on" : "off", static_cast<long long>(args.integer("fused")),
              static_cast<double>(generated) / seconds, static_cast<long long>(generated), seconds);
  if (!args.text("trace").empty()) {
    bench::KinetoTrace trace(args.text("trace"));
    (void)generator.generate(requests);
  }
  return 0;
}
