#include "gpujob/cluster/layout.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "gpujob/util/error.hpp"

namespace gpujob::cluster {

using config::JobKind;
using config::RoleSettings;
using config::RunConfig;

namespace {

int role_id(Role r) { return static_cast<int>(r); }

std::string role_key(Role r) { return std::string("layout.roles.") + config::name(r); }

// Roles each rank of an automatic layout holds, as phases.
std::vector<Role> automatic_roles(const RunConfig& c) {
  switch (c.job) {
    case JobKind::extract: return {Role::extractor};
    case JobKind::generate: return {Role::generator};
    case JobKind::cache_activations:
    case JobKind::sweep:
    case JobKind::selftest: return {Role::generator, Role::extractor};
    case JobKind::spec_thinking:
      c.source.fail("layout.roles", "missing; job spec_thinking needs target_shard and draft roles");
  }
  return {};
}

// Generator and extractor share ranks (phases) only when they list the same GPUs with the same
// number of ranks per GPU; any other overlap gives separate ranks that run at the same time.
bool extractor_shares_generator_ranks(const config::LayoutSettings& l) {
  const RoleSettings& g = l.role(Role::generator);
  const RoleSettings& e = l.role(Role::extractor);
  if (!g.enabled || !e.enabled || g.ranks_per_gpu != e.ranks_per_gpu) return false;
  std::vector<int> a = g.gpus, b = e.gpus;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

}  // namespace

const RoleAssignment* RankPlacement::find(Role role) const {
  for (const auto& r : roles) {
    if (r.role == role) return &r;
  }
  return nullptr;
}

Layout Layout::from_config(const RunConfig& c, int ranks_per_node) {
  Layout layout;
  layout.role_ranks_.assign(config::kAllRoles.size(), 0);
  layout.role_groups_.assign(config::kAllRoles.size(), 0);
  const config::LayoutSettings& settings = c.layout;
  if (!settings.any_role()) {
    layout.automatic_ = true;
    const auto roles = automatic_roles(c);
    GPUJOB_CHECK(ranks_per_node >= 1, "automatic layout needs at least one rank per node");
    for (int local = 0; local < ranks_per_node; ++local) {
      Slot slot;
      for (Role r : roles) {
        RoleAssignment a{r};
        a.gpu = local;
        a.memory_fraction = 0.9;
        a.index = local;
        slot.roles.push_back(a);
      }
      layout.node_pattern_.push_back(slot);
    }
    for (Role r : roles) layout.role_ranks_[role_id(r)] = ranks_per_node;
    return layout;
  }

  const bool shared = extractor_shares_generator_ranks(settings);
  for (Role r : config::kAllRoles) {
    const RoleSettings& s = settings.role(r);
    if (!s.enabled) continue;
    const bool sharded = r == Role::target_shard || r == Role::draft;
    const int ranks = s.ranks();
    const int group_size = sharded ? (s.tensor_parallel > 0 ? s.tensor_parallel : ranks) : 1;
    layout.role_ranks_[role_id(r)] = ranks;
    layout.role_groups_[role_id(r)] = sharded ? ranks / group_size : 0;
    // Replica-major order: with 2 ranks per GPU over GPUs 0,1 the ranks sit on 0,1,0,1, so a
    // tensor-parallel group of 2 spans both GPUs instead of stacking on one.
    std::vector<int> gpus_in_order;
    for (int replica = 0; replica < s.ranks_per_gpu; ++replica) {
      for (int gpu : s.gpus) gpus_in_order.push_back(gpu);
    }
    if (r == Role::extractor && shared) {
      // Same ranks as the generators, same GPU order: extraction is the second phase.
      const RoleSettings& g = settings.role(Role::generator);
      int k = 0;
      for (int replica = 0; replica < g.ranks_per_gpu; ++replica) {
        for (int gpu : g.gpus) {
          RoleAssignment a{r};
          a.gpu = gpu;
          a.memory_fraction = s.effective_memory_fraction();
          a.index = k;
          layout.node_pattern_[k].roles.push_back(a);
          ++k;
        }
      }
      continue;
    }
    for (int k = 0; k < ranks; ++k) {
      RoleAssignment a{r};
      a.gpu = gpus_in_order[k];
      a.memory_fraction = s.effective_memory_fraction();
      a.index = k;
      if (sharded) {
        a.group = k / group_size;
        a.group_rank = k % group_size;
        a.group_size = group_size;
      }
      layout.node_pattern_.push_back(Slot{{a}});
    }
  }
  return layout;
}

std::string Layout::ranks_per_node_summary() const {
  std::string out;
  for (Role r : config::kAllRoles) {
    const int n = role_ranks_[role_id(r)];
    if (n == 0) continue;
    bool phased = false;
    for (const auto& slot : node_pattern_) {
      if (slot.roles.size() > 1 && slot.roles[1].role == r) phased = true;
    }
    if (!out.empty()) out += phased ? " then " : " + ";
    out += concat(config::name(r), " ", n);
  }
  return out;
}

int Layout::role_ranks_per_node(Role role) const { return role_ranks_[role_id(role)]; }
int Layout::groups_per_node(Role role) const { return role_groups_[role_id(role)]; }

RankPlacement Layout::placement(int node, int local_rank, int nodes) const {
  GPUJOB_CHECK(local_rank >= 0 && local_rank < ranks_per_node(), "local rank ", local_rank,
               " outside the layout's ", ranks_per_node(), " ranks per node");
  RankPlacement p;
  p.node = node;
  p.local_rank = local_rank;
  p.rank = node * ranks_per_node() + local_rank;
  p.roles = node_pattern_[local_rank].roles;
  for (auto& a : p.roles) {
    const int per_node = role_ranks_[role_id(a.role)];
    a.index += node * per_node;
    a.count = per_node * nodes;
    if (a.group >= 0) a.group += node * role_groups_[role_id(a.role)];
  }
  return p;
}

std::vector<RankPlacement> Layout::table(int nodes) const {
  std::vector<RankPlacement> rows;
  for (int node = 0; node < nodes; ++node) {
    for (int local = 0; local < ranks_per_node(); ++local) rows.push_back(placement(node, local, nodes));
  }
  return rows;
}

std::vector<std::string> Layout::warnings() const {
  // A phased rank holds one role's memory at a time: count its largest fraction once.
  std::map<int, double> total;
  std::map<int, std::string> parts;
  for (const auto& slot : node_pattern_) {
    double fraction = 0;
    for (const auto& a : slot.roles) fraction = std::max(fraction, a.memory_fraction);
    const int gpu = slot.roles.front().gpu;
    total[gpu] += fraction;
    char text[32];
    std::snprintf(text, sizeof text, "%.2f", fraction);
    parts[gpu] += concat(parts[gpu].empty() ? "" : " + ", config::name(slot.roles.front().role), " ", text);
  }
  std::vector<std::string> out;
  if (automatic_) return out;
  for (const auto& [gpu, sum] : total) {
    if (sum > 1.0 + 1e-9) {
      char text[32];
      std::snprintf(text, sizeof text, "%.2f", sum);
      out.push_back(concat("GPU ", gpu, ": memory fractions add up to ", text, " (", parts[gpu],
                           "); lower memory_fraction so that the ranks on it fit"));
    }
  }
  return out;
}

bool uses_cuda(const RunConfig& c, int visible_gpus) {
  switch (c.model.device) {
    case config::DevicePreference::cpu: return false;
    case config::DevicePreference::cuda: return true;
    case config::DevicePreference::automatic: return c.job != JobKind::selftest && visible_gpus > 0;
  }
  return false;
}

void check_gpu_ids(const RunConfig& c, int gpus_on_node, const std::string& host) {
  for (Role r : config::kAllRoles) {
    const RoleSettings& s = c.layout.role(r);
    if (!s.enabled) continue;
    for (size_t i = 0; i < s.gpus.size(); ++i) {
      if (s.gpus[i] >= gpus_on_node) {
        c.source.fail(concat(role_key(r), ".gpus[", i, "]"), "GPU ", s.gpus[i], " does not exist (",
                      gpus_on_node, " visible on node ", host, ")");
      }
    }
  }
}

void check_launch(const Layout& layout, const RunConfig& c, const LaunchFacts& f) {
  const int needed = layout.ranks_per_node();
  const std::string roles = layout.ranks_per_node_summary();
  if (f.world_size == 1 && needed > 1) {
    if (f.slurm_tasks > 1) {
      fail("srun started ", f.slurm_tasks, " tasks but each one is an MPI world of 1: srun is missing the MPI "
           "plugin; use `srun --mpi=pmix` (see `srun --mpi=list`) or mpirun inside the allocation");
    }
    fail(c.source.file(), ": the layout needs ", needed, " ranks per node (", roles,
         ") but gpujob runs as a single process; start it with `mpirun -np ", needed, " gpujob ...`");
  }
  if (f.local_size != needed) {
    fail("node ", f.host, " has ", f.local_size, " ranks but ", c.source.file(), "'s layout needs ", needed,
         " ranks per node (", roles, "); use -np ", needed, " per node (-np ", needed * f.nodes, " for ",
         f.nodes, f.nodes == 1 ? " node)" : " nodes)");
  }
  if (c.layout.gpus_per_node > 0) check_gpu_ids(c, c.layout.gpus_per_node, f.host);
  if (uses_cuda(c, f.visible_gpus)) {
    if (f.visible_gpus == 0) {
      c.source.fail("model.device", "cuda requested but node ", f.host, " shows no GPU (CUDA_VISIBLE_DEVICES, driver, or a CPU build of libtorch)");
    }
    check_gpu_ids(c, f.visible_gpus, f.host);
  }
}

std::string format_role_table(const Layout& layout, const RunConfig& c, int nodes) {
  std::string out = concat(c.source.file(), ": job ", config::name(c.job), ", ", layout.ranks_per_node(),
                           " ranks per node (", layout.ranks_per_node_summary(), ") x ", nodes,
                           nodes == 1 ? " node" : " nodes", " = ", layout.ranks_per_node() * nodes, " ranks",
                           layout.automatic() ? " (automatic layout: no roles in the config)" : "", "\n");
  char line[256];
  std::snprintf(line, sizeof line, "%5s %5s %6s %4s  %-32s %-10s %s\n", "rank", "node", "local", "gpu", "role",
                "group", "memory");
  out += line;
  for (const auto& p : layout.table(nodes)) {
    std::string role, group, memory;
    for (const auto& a : p.roles) {
      if (!role.empty()) {
        role += " then ";
        memory += "/";
      }
      role += config::name(a.role);
      if (a.group >= 0) group = concat("tp", a.group, " ", a.group_rank, "/", a.group_size);
      char fraction[16];
      std::snprintf(fraction, sizeof fraction, "%.2f", a.memory_fraction);
      memory += fraction;
    }
    if (p.rank == 0) role += " +coordinator";
    std::snprintf(line, sizeof line, "%5d %5d %6d %4d  %-32s %-10s %s\n", p.rank, p.node, p.local_rank,
                  p.roles.front().gpu, role.c_str(), group.empty() ? "-" : group.c_str(), memory.c_str());
    out += line;
  }
  for (const auto& w : layout.warnings()) out += "warning: " + w + "\n";
  return out;
}

}  // namespace gpujob::cluster
