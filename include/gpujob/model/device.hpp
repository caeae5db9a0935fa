// Device placement: visible GPUs, binding a rank to its GPU with a memory cap, releasing cached memory.
#pragma once

#include <ATen/ATen.h>

namespace gpujob::model {

// GPUs this process sees (0 on CPU builds of libtorch).
int visible_gpu_count();

// Makes `gpu` the current CUDA device and caps this process's share of its memory at
// `memory_fraction` (the role's memory fraction), so ranks sharing a GPU cannot starve each
// other. Returns the device to load models on. No-op returning CPU when `use_cuda` is false.
at::Device bind_device(bool use_cuda, int gpu, double memory_fraction);

// Bytes this process may still allocate on `device`: its memory fraction of the GPU (from
// bind_device; 1 when none was set) minus what its tensors hold, and never more than the GPU has
// free (other ranks sharing it count). -1 on the CPU, where no limit is enforced.
int64_t available_device_memory(at::Device device);

// A contiguous host copy of `t`. From a GPU it goes into pinned (page-locked) memory and is only
// issued: the host carries on, and must call wait_for_device before reading it. Pinned memory
// copies at the link's full rate and is reused by libtorch's host allocator. A CPU tensor is
// returned as it is (made contiguous).
at::Tensor copy_to_host_async(const at::Tensor& t);

// Blocks until the work issued on `device`'s current stream has finished (no-op on the CPU).
void wait_for_device(at::Device device);

// Returns cached, unused device memory to the driver (after a phase's model is destroyed, so the
// next phase on the same GPU gets it). No-op on CPU.
void release_cached_device_memory();

}  // namespace gpujob::model
