// SpecGroups: MPI_Comm_split of the world into target/draft shard groups and the driver's channels.
#include "gpujob/cluster/spec_groups.hpp"

#include "gpujob/cluster/mpi_check.hpp"
#include "gpujob/util/error.hpp"

#include <vector>

namespace gpujob::cluster {

namespace {

// Checks one role's shards over the gathered table: exactly shards 0..size-1, one group.
void check_group(const std::vector<int>& table, int world_size, int column, const char* role) {
  std::vector<int> seen;
  int size = -1;
  for (int r = 0; r < world_size; ++r) {
    const int* row = &table[static_cast<size_t>(4 * r)];
    if (row[column] == 0) continue;
    if (size < 0) {
      size = row[3];
      seen.assign(static_cast<size_t>(size), 0);
    }
    GPUJOB_CHECK(row[3] == size, "spec_thinking: ", role, " ranks disagree on the group size (", size, " vs ", row[3],
                 "); the layout must give one ", role, " group");
    GPUJOB_CHECK(row[2] >= 0 && row[2] < size, "spec_thinking: ", role, " shard ", row[2], " outside a group of ", size);
    GPUJOB_CHECK(seen[static_cast<size_t>(row[2])]++ == 0, "spec_thinking: ", role, " shard ", row[2],
                 " appears twice: the layout has more than one ", role,
                 " group (one target and one draft group are supported)");
  }
  GPUJOB_CHECK(size > 0, "spec_thinking: the layout has no ", role, " ranks");
  for (int s = 0; s < size; ++s) {
    GPUJOB_CHECK(seen[static_cast<size_t>(s)] == 1, "spec_thinking: ", role, " shard ", s, " of ", size, " is missing");
  }
}

}  // namespace

SpecGroups make_spec_groups(MPI_Comm world, const SpecRankRole& me) {
  int world_size = 0;
  check_mpi(MPI_Comm_size(world, &world_size), "spec groups: MPI_Comm_size");

  // Every rank sees the whole table, so every rank reaches the same verdict.
  const int row[4] = {me.target_shard ? 1 : 0, me.draft ? 1 : 0, me.group_rank, me.group_size};
  std::vector<int> table(static_cast<size_t>(4 * world_size));
  check_mpi(MPI_Allgather(row, 4, MPI_INT, table.data(), 4, MPI_INT, world), "spec groups: MPI_Allgather of roles");
  for (int r = 0; r < world_size; ++r) {
    GPUJOB_CHECK(!(table[static_cast<size_t>(4 * r)] && table[static_cast<size_t>(4 * r + 1)]), "spec_thinking: rank ",
                 r, " holds both target_shard and draft; give the roles separate ranks");
  }
  check_group(table, world_size, 0, "target_shard");
  check_group(table, world_size, 1, "draft");

  SpecGroups g;
  g.role = me;
  g.driver = me.draft && me.group_rank == 0;
  g.target_group = Communicator::split(world, me.target_shard ? 0 : -1, me.group_rank);
  g.draft_group = Communicator::split(world, me.draft ? 0 : -1, me.group_rank);
  const bool in_target_channel = g.driver || me.target_shard;
  g.target_channel = Communicator::split(world, in_target_channel ? 0 : -1, g.driver ? 0 : 1 + me.group_rank);
  g.target_leader = 1;
  if (me.draft) {
    MPI_Comm dup = MPI_COMM_NULL;
    check_mpi(MPI_Comm_dup(g.draft_group.get(), &dup), "spec groups: MPI_Comm_dup");
    g.draft_channel = Communicator(dup);
  }
  return g;
}

}  // namespace gpujob::cluster
