// NcclCollectives on GPUs, one per rank (run alone and with 2 ranks): the sums and gathers, the
// same calls captured in a CUDA graph, and tensor-parallel decoding replayed from CUDA graphs
// against per-call steps and one unsharded decoder. Skips with a message where the build has no
// CUDA or there are fewer GPUs than ranks.
#include "gpujob/cluster/communicator.hpp"
#include "gpujob/cluster/nccl_collectives.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/decoder_slot_model.hpp"
#include "gpujob/model/device.hpp"
#include "gpujob/model/generator.hpp"
#include "model/tiny_model.hpp"

#include <ATen/ATen.h>
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#ifdef GPUJOB_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

// After the libtorch headers: Catch2's CHECK must replace c10's (see catch.hpp).
#include "mpi_session.hpp"
#include "catch.hpp"

using namespace gpujob;

namespace {

const MpiSession mpi_session;

// Every rank decides alike (same build, same node), so either all run a case or all skip it.
bool have_gpu_per_rank() {
  if (!cluster::NcclCollectives::available()) {
    WARN("this build has no CUDA/NCCL: NCCL collectives are not run");
    return false;
  }
  if (model::visible_gpu_count() < mpi_size()) {
    WARN(mpi_size() << " ranks but " << model::visible_gpu_count() << " GPUs visible: NCCL collectives are not run");
    return false;
  }
  return true;
}

at::Device rank_gpu() { return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(mpi_rank())); }

// One NCCL communicator over all ranks, rank r on GPU r (made after that device is current).
std::unique_ptr<cluster::NcclCollectives> connect() {
#ifdef GPUJOB_WITH_CUDA
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(mpi_rank()));
#endif
  cluster::Communicator group = cluster::Communicator::split(MPI_COMM_WORLD, 0, mpi_rank());
  return std::make_unique<cluster::NcclCollectives>(group.get(), mpi_rank());
}

// What rank r contributes: distinct per rank and element, exact in bfloat16 when summed
// (small integers).
at::Tensor contribution(int rank, at::IntArrayRef shape, at::ScalarType dtype) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return (at::arange(n, at::kDouble).remainder(13) + 3 * rank).view(shape).to(dtype).to(rank_gpu());
}

}  // namespace

TEST_CASE("NCCL all-reduce sums and all-gather concatenates in rank order, one GPU per rank") {
  if (!have_gpu_per_rank()) return;
  auto nccl = connect();
  REQUIRE(nccl->size() == mpi_size());
  REQUIRE(nccl->rank() == mpi_rank());
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
    INFO("dtype " << c10::toString(dtype));
    at::Tensor t = contribution(mpi_rank(), {5, 7}, dtype);
    at::Tensor want = at::zeros({5, 7}, at::kDouble);
    for (int r = 0; r < mpi_size(); ++r) want += contribution(r, {5, 7}, at::kDouble).cpu();
    nccl->all_reduce_sum(t);
    CHECK(at::equal(t.cpu().to(at::kDouble), want));
    // A strided view is summed through a contiguous copy and written back in place.
    at::Tensor base = contribution(mpi_rank(), {7, 5}, dtype);
    at::Tensor view = base.t();
    at::Tensor want_view = at::zeros({5, 7}, at::kDouble);
    for (int r = 0; r < mpi_size(); ++r) want_view += contribution(r, {7, 5}, at::kDouble).cpu().t();
    nccl->all_reduce_sum(view);
    CHECK(at::equal(base.cpu().to(at::kDouble).t(), want_view));
  }
  for (const int64_t dim : {0, 1, -1}) {
    INFO("dim " << dim);
    const at::Tensor local = contribution(mpi_rank(), {2, 3}, at::kFloat);
    std::vector<at::Tensor> parts;
    for (int r = 0; r < mpi_size(); ++r) parts.push_back(contribution(r, {2, 3}, at::kFloat).cpu());
    CHECK(at::equal(nccl->all_gather(local, dim).cpu(), at::cat(parts, dim)));
  }
  // A tensor on another device than the communicator's is a clear error, not a hang.
  at::Tensor on_cpu = at::ones({3});
  CHECK_THROWS_WITH(nccl->all_reduce_sum(on_cpu), Catch::Contains("expected cuda:" + std::to_string(mpi_rank())));
}

#ifdef GPUJOB_WITH_CUDA
TEST_CASE("NCCL all-reduce captured in a CUDA graph sums what the buffer holds at each replay") {
  if (!have_gpu_per_rank()) return;
  auto nccl = connect();
  at::Tensor buffer = contribution(mpi_rank(), {64}, at::kBFloat16);
  at::Tensor doubled;
  nccl->all_reduce_sum(buffer);  // eager first: NCCL connects before the capture
  c10::cuda::device_synchronize();  // the capture stream does not wait for the default one
  at::cuda::CUDAGraph graph;
  {
    c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool());
    graph.capture_begin();
    nccl->all_reduce_sum(buffer);
    doubled = buffer * 2;  // libtorch's work after the collective, in the same graph
    graph.capture_end();
  }
  for (int replay = 0; replay < 3; ++replay) {
    INFO("replay " << replay);
    buffer.copy_(contribution(mpi_rank(), {64}, at::kBFloat16) + replay);
    graph.replay();
    at::Tensor want = at::zeros({64}, at::kDouble);
    for (int r = 0; r < mpi_size(); ++r) want += contribution(r, {64}, at::kDouble).cpu() + replay;
    CHECK(at::equal(buffer.cpu().to(at::kDouble), want));
    CHECK(at::equal(doubled.cpu().to(at::kDouble), want * 2));
  }
}
#endif

TEST_CASE("tensor-parallel decoding from CUDA graphs over NCCL gives the per-call and unsharded tokens") {
  if (!have_gpu_per_rank()) return;
  auto nccl = connect();
  // Float32: per-call steps of fewer rows take other kernels than the all-slot graphs, and only
  // float32 keeps their results close enough for the same greedy tokens on random tiny models.
  for (const std::string kind : {"qwen3", "gemma3"}) {
    INFO("model " << kind << ", " << mpi_size() << " shards");
    auto json = tiny::config_for(kind);
    json["head_dim"] = 64;  // a size the decode attention kernel takes
    const std::string dir = tiny::write_checkpoint(json, tiny::random_weights(model::parse_model_config(json, "config.json"), 8));
    model::LoadOptions shard;
    shard.dtype = at::kFloat;
    shard.device = rank_gpu();
    shard.shard_index = mpi_rank();
    shard.shard_count = mpi_size();
    shard.collectives = nccl.get();
    model::LoadOptions whole = shard;
    whole.shard_index = 0;
    whole.shard_count = 1;
    whole.collectives = nullptr;
    auto sharded = model::Decoder::load(dir, shard), single = model::Decoder::load(dir, whole);
    for (auto* d : {sharded.get(), single.get()}) {
      d->set_fused_ops(true);
      d->set_key_length_bucket(8);  // several buckets, so several graphs, in 24 positions
    }
    REQUIRE(sharded->decode_step_capturable());
    const int64_t V = sharded->config().vocab_size;
    std::vector<model::GenerationRequest> requests;
    for (int64_t i = 0; i < 9; ++i) requests.push_back({tiny::token_sequence(i + 1, 2 + i % 5, V), static_cast<uint64_t>(i)});
    model::GeneratorOptions options;
    options.stop.max_new_tokens = 16;
    options.stop.ignore_eos = true;
    model::DecoderSlotModel graphs(*sharded, 4, 24);  // kAuto: graphs, NCCL being capturable
    model::DecoderSlotModel per_call(*sharded, 4, 24, model::SlotDecode::kPerCall);
    model::DecoderSlotModel unsharded(*single, 4, 24, model::SlotDecode::kPerCall);
    REQUIRE(graphs.decode_mode() == model::SlotDecode::kCudaGraphs);
    const auto got = model::Generator(graphs, options).generate(requests);
    const auto want = model::Generator(per_call, options).generate(requests);
    const auto reference = model::Generator(unsharded, options).generate(requests);
    CHECK(graphs.uses_cuda_graphs());
    CHECK(graphs.all_slot_steps() > 0);
    for (size_t i = 0; i < requests.size(); ++i) {
      INFO("prompt " << i);
      CHECK(got[i].ids == want[i].ids);
      CHECK(want[i].ids == reference[i].ids);  // the shards' partial sums add up to one matmul's
    }
  }
}
