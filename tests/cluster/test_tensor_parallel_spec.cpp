// Speculative Thinking across ranks (3 ranks: draft + 2 target shards; 4 ranks: 2 draft shards + 2
// target shards): the driver steers the tensor-parallel groups through RemoteModel, and with the
// draft equal to the target and greedy sampling the output is exactly the large model's alone.
#include "gpujob/cluster/remote_model.hpp"
#include "gpujob/cluster/spec_groups.hpp"
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/decoder_sequence_model.hpp"
#include "gpujob/model/speculative_thinking.hpp"
#include "gpujob/util/error.hpp"
#include "model/spec_fixtures.hpp"

#include <mpi.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

// After the libtorch headers: Catch2's CHECK must replace c10's (see catch.hpp).
#include "mpi_session.hpp"
#include "catch.hpp"

using namespace gpujob;

namespace {

// MPI lives for the whole executable: Catch2's main runs inside it.
const MpiSession mpi_session;

const char* kCase = "qwen3_new";  // GQA 4/2: shards over 2 ranks
constexpr int64_t kMaxLen = 512;

std::string model_dir() { return test::golden_model_dir(kCase); }
using test::synthetic_decode;

// Roles by world rank: the draft group first, then the target group.
cluster::SpecRankRole role_of(int rank, int world) {
  const int draft_shards = world == 4 ? 2 : 1;
  cluster::SpecRankRole r;
  r.draft = rank < draft_shards;
  r.target_shard = !r.draft;
  r.group_rank = r.draft ? rank : rank - draft_shards;
  r.group_size = r.draft ? draft_shards : world - draft_shards;
  return r;
}

model::LoadOptions options_for(const cluster::SpecRankRole& role, model::Collectives* c) {
  model::LoadOptions o;
  o.dtype = at::kFloat;
  o.shard_index = role.group_rank;
  o.shard_count = role.group_size;
  o.collectives = c;
  return o;
}

model::SpecThinkingParams test_params() {
  model::SpecThinkingParams p;
  p.max_target_tokens = 6;
  p.original_recap_token_num = 9;
  p.max_recap_token_num = 9;
  p.help_recap_ids = {5, 6, 7};
  return p;
}

}  // namespace

TEST_CASE("spec mode with the draft equal to the target writes exactly the large model's greedy output") {
  int rank = 0;
  int world = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  REQUIRE((world == 3 || world == 4));
  const cluster::SpecRankRole role = role_of(rank, world);
  cluster::SpecGroups groups = cluster::make_spec_groups(MPI_COMM_WORLD, role);
  const bool in_target = role.target_shard;
  cluster::MpiCollectives collectives(in_target ? std::move(groups.target_group) : std::move(groups.draft_group));
  auto decoder = model::Decoder::load(model_dir(), options_for(role, &collectives));
  const std::vector<int64_t> eos = {2};
  model::DecoderSequenceModel local(*decoder, kMaxLen, eos, synthetic_decode);

  if (!groups.driver) {
    MPI_Comm channel = in_target ? groups.target_channel.get() : groups.draft_channel.get();
    cluster::serve_remote_model(channel, in_target ? groups.target_leader : 0, local);
    return;
  }

  cluster::RemoteModel large(groups.target_channel.get(), groups.target_leader, nullptr);
  cluster::RemoteModel small(groups.draft_channel.get(), 0, &local);
  // The reference: one unsharded decoder on the driver.
  auto single = model::Decoder::load(model_dir(), options_for(cluster::SpecRankRole{}, nullptr));
  model::DecoderSequenceModel reference(*single, kMaxLen, eos);

  const std::vector<std::vector<int64_t>> prompts = {{1, 40, 41, 42, 43}, {1, 100, 7, 220, 19, 64, 33}};
  const int64_t max_tokens = 150;
  model::SamplingParams greedy;
  model::SpecThinkingParams params = test_params();
  params.recap_after_negative_num = 1000;  // recaps insert help words: keep them out of this identity
  params.max_negative_num = 1000;
  for (const auto& prompt : prompts) {
    INFO("prompt of " << prompt.size() << " tokens");
    const model::SpecThinkingResult alone = model::generate_alone(large, prompt, max_tokens, greedy, 1, true);
    const model::SpecThinkingResult ref = model::generate_alone(reference, prompt, max_tokens, greedy, 1, true);
    CHECK(alone.tokens == ref.tokens);

    model::SpeculativeThinking spec(small, large, synthetic_decode, params);
    const model::SpecThinkingResult mixed = spec.run(prompt, max_tokens, greedy, 1);
    CHECK(mixed.tokens == alone.tokens);
    // The identity is only meaningful if control actually passed back and forth.
    CHECK(mixed.drafts > 0);
    CHECK(mixed.large_tokens > 0);
    CHECK(mixed.small_tokens > 0);
    CHECK(mixed.large_tokens + mixed.small_tokens == mixed.generated());
  }

  // Sampled runs with recaps: the group stays in step (no hang) and the streams make runs repeatable.
  model::SamplingParams sampled;
  sampled.temperature = 0.6;
  sampled.top_p = 0.95;
  sampled.top_k = 20;
  sampled.seed = 42;
  model::SpecThinkingParams with_recaps = test_params();
  with_recaps.recap_after_negative_num = 1;
  with_recaps.max_negative_num = 2;
  model::SpeculativeThinking spec(small, large, synthetic_decode, with_recaps);
  const model::SpecThinkingResult a = spec.run(prompts[0], max_tokens, sampled, 3);
  const model::SpecThinkingResult b = spec.run(prompts[0], max_tokens, sampled, 3);
  CHECK(a.tokens == b.tokens);
  CHECK(a.large_tokens + a.small_tokens + a.inserted_tokens == a.generated());
  large.shutdown();
  small.shutdown();
}

TEST_CASE("a layout with two draft groups is refused on every rank with the same message") {
  int rank = 0;
  int world = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  cluster::SpecRankRole role;
  role.draft = rank < world - 1;  // every draft rank claims shard 0 of a group of 1
  role.target_shard = !role.draft;
  CHECK_THROWS_WITH(cluster::make_spec_groups(MPI_COMM_WORLD, role), Catch::Contains("draft shard 0 appears twice"));
}
