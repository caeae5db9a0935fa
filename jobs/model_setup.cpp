#include "jobs/model_setup.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "gpujob/model/device.hpp"

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
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("loaded {} ({}, {} layers) on {} in {:.1f} s", settings.path,
               decoder->config().architecture, decoder->config().num_layers, load.device.str(), seconds);
  return decoder;
}

}  // namespace gpujob::jobs
