// Extraction forward-pass throughput: gpujob's capture of one layer (early exit after it) over
// random tokens, as tokens per second, for BENCHMARKS.md. The host copy of the captured rows is
// included (it is part of extraction), so the clock stops only when the rows are on the host.
//
//   forward_bench MODEL_DIR [--layer 13] [--batch 16] [--seq 512] [--position last|all]
//                 [--dtype bfloat16] [--device cuda] [--iters 10] [--warmup 3] [--fused 1]
//                 [--trace FILE.json]
//
// --fused 0 runs separate q/k/v and gate/up GEMMs and RMSNorm, RoPE and the gated activation as
// ATen expressions; 1 (default) the stacked GEMMs and the fused CUDA kernels (Decoder::set_fused_ops).
// --trace writes a device trace of one more batch after the timed ones (bench/trace_summary.py).
//
// Prints one line: `gpujob extract layer=13 position=last batch=16 seq=512: 71234 tok/s (...)`.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>

#include "bench_args.hpp"
#include "kineto_trace.hpp"
#include "gpujob/model/capture.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/device.hpp"

int main(int argc, char** argv) {
  using namespace gpujob;
  const bench::Args args(argc, argv,
                         {{"layer", "13"}, {"batch", "16"}, {"seq", "512"}, {"position", "last"},
                          {"dtype", "bfloat16"}, {"device", "cuda"}, {"iters", "10"}, {"warmup", "3"}, {"fused", "1"}, {"trace", ""}},
                         "usage: forward_bench MODEL_DIR [--layer L] [--batch B] [--seq T] [--position last|all] "
                         "[--dtype bfloat16|float16|float32] [--device cuda|cpu] [--iters N] [--warmup N] [--fused 0|1] [--trace FILE.json]");
  model::LoadOptions load;
  load.dtype = args.text("dtype") == "float32" ? at::kFloat : args.text("dtype") == "float16" ? at::kHalf : at::kBFloat16;
  load.device = model::bind_device(args.text("device") == "cuda", 0, 1.0);
  const auto started = std::chrono::steady_clock::now();
  auto decoder = model::Decoder::load(args.model_dir(), load);
  decoder->set_fused_ops(args.integer("fused") != 0);
  std::printf("loaded %s in %.1f s\n", args.model_dir().c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

  model::CaptureRequest request;
  request.layers = {args.integer("layer")};
  request.positions = {model::parse_pooling(args.text("position"))};
  const int64_t batch = args.integer("batch"), seq = args.integer("seq");
  const auto sequences = bench::random_sequences(batch, seq, decoder->config().vocab_size, 1234);

  for (int64_t i = 0; i < args.integer("warmup"); ++i) (void)model::forward_capture(*decoder, sequences, request);
  const int64_t iters = args.integer("iters");
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; ++i) (void)model::forward_capture(*decoder, sequences, request);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tokens_per_s = static_cast<double>(iters * batch * seq) / seconds;
  std::printf("gpujob extract layer=%lld position=%s batch=%lld seq=%lld dtype=%s fused=%lld: %.0f tok/s (%.2f ms per batch)\n",
              static_cast<long long>(args.integer("layer")), args.text("position").c_str(),
              static_cast<long long>(batch), static_cast<long long>(seq), args.text("dtype").c_str(),
              static_cast<long long>(args.integer("fused")), tokens_per_s,
              1e3 * seconds / static_cast<double>(iters));
  if (!args.text("trace").empty()) {
    bench::KinetoTrace trace(args.text("trace"));
    (void)model::forward_capture(*decoder, sequences, request);
  }
  return 0;
}
