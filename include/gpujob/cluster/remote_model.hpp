// RemoteModel: one rank drives a (tensor-parallel) model group over MPI as if it were a local SequenceModel.
#pragma once

#include "gpujob/cluster/mpi_collectives.hpp"
#include "gpujob/model/sequence_model.hpp"

#include <mpi.h>

#include <cstdint>
#include <vector>

namespace gpujob::cluster {

// The driver and the group talk over a `channel` communicator: the driver is channel rank 0 and
// every shard of the group is a member. The driver broadcasts each command; every shard runs it
// on its own DecoderSequenceModel (the shards' collectives keep them in step) and the group's
// shard 0 (channel rank `leader`) sends generated tokens back. When the driver is itself the
// group's shard 0 (a tensor-parallel draft), leader is 0 and it runs each command locally too.
//
// Appended tokens are held back and travel with the next command, so a hand-off costs one
// message, and the shards prefill exactly the tokens they lack. If the driver fails, the
// members stay blocked in the broadcast until the job's MPI_Abort ends them (see main).
class RemoteModel final : public model::SequenceModel {
 public:
  // `local`: the driver's own shard when it is a member (leader 0), else null (leader >= 1).
  RemoteModel(MPI_Comm channel, int leader, model::SequenceModel* local);
  ~RemoteModel() override;
  RemoteModel(const RemoteModel&) = delete;
  RemoteModel& operator=(const RemoteModel&) = delete;

  void reset(const std::vector<int64_t>& prompt) override;
  void append(const std::vector<int64_t>& tokens) override;
  model::GenerateResult generate(const model::GenerateRequest& request) override;
  void truncate(int64_t length) override;
  int64_t length() const override { return remote_length_ + static_cast<int64_t>(pending_.size()); }

  // Ends the members' serve loops; called by the destructor if not before. Idempotent.
  void shutdown();

 private:
  MPI_Comm channel_;
  int leader_;
  model::SequenceModel* local_;
  int64_t remote_length_ = 0;      // tokens the shards hold
  std::vector<int64_t> pending_;   // appended since, not yet sent
  bool shut_down_ = false;
};

// Runs on every member except the driver: executes broadcast commands on `local` until the driver
// shuts the group down. Throws (one line, with the rank) if a command fails.
void serve_remote_model(MPI_Comm channel, int leader, model::SequenceModel& local);

}  // namespace gpujob::cluster
