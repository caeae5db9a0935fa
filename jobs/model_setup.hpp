// Model setup shared by the jobs: config dtype/device to libtorch, and loading a rank's decoder
// on the GPU its role was given, within the role's memory fraction.
#pragma once

#include <ATen/ATen.h>

#include <memory>

#include "gpujob/config/run_config.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/decoder_slot_model.hpp"
#include "gpujob/model/generator.hpp"

namespace gpujob::jobs {

at::ScalarType to_scalar_type(config::DType dtype);

// Whether `settings` runs on CUDA here (automatic: when this process sees a GPU).
bool wants_cuda(const config::ModelSettings& settings);

// Binds the process to `gpu` (node-local id; ignored on CPU) with `memory_fraction`, then loads
// the model there. One shard unless `load` says otherwise.
std::unique_ptr<model::Decoder> load_decoder(const config::ModelSettings& settings, int gpu,
                                             double memory_fraction, model::LoadOptions load = {});

// The generator's slots for `decoder`: up to generation.batch_size (and never more than `samples`)
// slots of `max_len` positions, fewer when the KV cache and the forward passes' workspace would not
// fit in the memory the rank has left under its memory fraction (model/kv_cache_plan.hpp). The
// cache is allocated here, once. Logs the plan.
std::unique_ptr<model::DecoderSlotModel> make_generator_slots(const model::Decoder& decoder,
                                                              const config::GenerationSettings& generation,
                                                              int64_t samples, int64_t max_len);

}  // namespace gpujob::jobs
