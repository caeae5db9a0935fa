#include "jobs/model_setup.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "gpujob/model/device.hpp"
#include "gpujob/model/kv_cache_plan.hpp"

namespace gpujob::jobs {

at::ScalarType to_scalar_type(config::DType dtype) {
  switch (dtype) {
    case config::DType::float32: return at::kFloat;
    case config::DType::bfloat16: return at::kBFloat16;
    case config::DType::float16: return at::kHalf;
  }
  return at::kFloat;
}

bool wants_cuda(const config::ModelSettings& settings) {
  switch (settings.device) {
    case config::DevicePreference::cpu: return false;
    case config::DevicePreference::cuda: return true;
    case config::DevicePreference::automatic: return model::visible_gpu_count() > 0;
  }
  return false;
}

std::unique_ptr<model::Decoder> load_decoder(const config::ModelSettings& settings, int gpu,
                                             double memory_fraction, model::LoadOptions load) {
  const auto started = std::chrono::steady_clock::now();
  load.device = model::bind_device(wants_cuda(settings), gpu, memory_fraction);
  load.dtype = to_scalar_type(settings.dtype);
  auto decoder = model::Decoder::load(settings.path, load);
  decoder->set_fused_ops(settings.fused_kernels);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("loaded {} ({}, {} layers) on {} in {:.1f} s", settings.path,
               decoder->config().architecture, decoder->config().num_layers, load.device.str(), seconds);
  return decoder;
}

std::unique_ptr<model::DecoderSlotModel> make_generator_slots(const model::Decoder& decoder,
                                                              const config::GenerationSettings& generation,
                                                              int64_t samples, int64_t max_len) {
  const int64_t wanted = std::max<int64_t>(1, std::min<int64_t>(generation.batch_size, samples));
  const int64_t longest_prompt = std::max<int64_t>(1, max_len - generation.max_new_tokens + 1);
  const at::Device device = decoder.options().device;
  const int64_t available = model::available_device_memory(device);
  const model::KvCachePlan plan =
      model::plan_generation_memory(available, decoder.config(), decoder.kv_cache_shape(), decoder.options().dtype,
                                    max_len, wanted, generation.max_prefill_tokens, longest_prompt);
  if (available >= 0) {
    spdlog::info("KV cache: {} slots x {} positions, {} (+{} kept for the forward passes) of {} left on {} under "
                 "the memory fraction",
                 plan.n_slots, plan.max_len, model::format_gib(plan.bytes), model::format_gib(plan.workspace_bytes),
                 model::format_gib(available), device.str());
    if (plan.n_slots < wanted) {
      spdlog::warn("KV cache: generation.batch_size {} does not fit; decoding {} sequences at a time "
                   "(raise the role's memory_fraction or lower generation.max_model_len for more)",
                   wanted, plan.n_slots);
    }
  } else {
    spdlog::debug("KV cache: {} slots x {} positions, {} on {}", plan.n_slots, plan.max_len,
                  model::format_gib(plan.bytes, 3), device.str());
  }
  const auto decode = generation.cuda_graphs ? model::SlotDecode::kAuto : model::SlotDecode::kPerCall;
  auto slots = std::make_unique<model::DecoderSlotModel>(decoder, plan.n_slots, plan.max_len, decode);
  if (slots->decode_mode() == model::SlotDecode::kCudaGraphs) {
    spdlog::info("decode: steps of most slots replayed from CUDA graphs (one per {} key positions)",
                 decoder.key_length_bucket());
  }
  return slots;
}

}  // namespace gpujob::jobs
