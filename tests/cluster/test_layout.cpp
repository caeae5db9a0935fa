// Role tables: every config in configs/ at several node counts, overlap/disjoint/tensor-parallel
// placement, memory warnings, the plan text and the startup checks.
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "gpujob/cluster/layout.hpp"
#include "gpujob/config/load_config.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob;
using namespace gpujob::cluster;
using config::RunConfig;

namespace {

std::string source_dir() {
  const char* dir = std::getenv("GPUJOB_SOURCE_DIR");
  return dir ? dir : ".";
}

RunConfig load(const std::string& name) { return config::load_run_config(source_dir() + "/configs/" + name); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// Invariants every table must satisfy, whatever the config.
void check_table(const RunConfig& c, const Layout& layout, int nodes) {
  const auto rows = layout.table(nodes);
  REQUIRE(static_cast<int>(rows.size()) == layout.ranks_per_node() * nodes);
  std::map<Role, std::set<int>> indices;
  std::map<std::pair<Role, int>, std::set<int>> groups;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& p = rows[i];
    CHECK(p.rank == static_cast<int>(i));
    CHECK(p.node == p.rank / layout.ranks_per_node());
    CHECK(p.local_rank == p.rank % layout.ranks_per_node());
    REQUIRE_FALSE(p.roles.empty());
    // The pattern repeats per node: same roles and GPUs as the first node's rank.
    const auto& first = rows[p.local_rank];
    REQUIRE(first.roles.size() == p.roles.size());
    for (size_t k = 0; k < p.roles.size(); ++k) {
      const auto& a = p.roles[k];
      CHECK(a.role == first.roles[k].role);
      CHECK(a.gpu == first.roles[k].gpu);
      CHECK(a.count == layout.role_ranks_per_node(a.role) * nodes);
      CHECK(indices[a.role].insert(a.index).second);
      if (!layout.automatic()) {
        const auto& s = c.layout.role(a.role);
        CHECK(std::find(s.gpus.begin(), s.gpus.end(), a.gpu) != s.gpus.end());
        CHECK(a.memory_fraction == Approx(s.effective_memory_fraction()));
      }
      if (a.group >= 0) CHECK(groups[{a.role, a.group}].insert(a.group_rank).second);
    }
  }
  for (const auto& [role, seen] : indices) {
    CHECK(static_cast<int>(seen.size()) == layout.role_ranks_per_node(role) * nodes);
    CHECK(*seen.rbegin() == static_cast<int>(seen.size()) - 1);
  }
  // Every tensor-parallel group holds shards 0..size-1 exactly once.
  for (const auto& [key, shards] : groups) {
    const auto& s = c.layout.role(key.first);
    const int expected = s.tensor_parallel > 0 ? s.tensor_parallel : s.ranks();
    CHECK(static_cast<int>(shards.size()) == expected);
    CHECK(*shards.rbegin() == static_cast<int>(shards.size()) - 1);
  }
}

}  // namespace

TEST_CASE("every config in configs/ loads and plans at 1, 2 and 4 nodes") {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(source_dir() + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    ++count;
    INFO(entry.path().string());
    const RunConfig c = config::load_run_config(entry.path().string());
    const Layout layout = Layout::from_config(c, 3);
    for (int nodes : {1, 2, 4}) {
      check_table(c, layout, nodes);
      const std::string text = format_role_table(layout, c, nodes);
      CHECK(text.find(" +coordinator") != std::string::npos);
    }
  }
  CHECK(count >= 10);
}

TEST_CASE("split8: generators on 0-3 and extractors on 4-7, repeated per node") {
  const RunConfig c = load("split8.yaml");
  const Layout layout = Layout::from_config(c);
  REQUIRE(layout.ranks_per_node() == 8);
  CHECK(layout.ranks_per_node_summary() == "generator 4 + extractor 4");
  const auto rows = layout.table(2);
  for (int r = 0; r < 16; ++r) {
    REQUIRE(rows[r].roles.size() == 1);
    const int local = r % 8;
    CHECK(rows[r].roles[0].role == (local < 4 ? Role::generator : Role::extractor));
    CHECK(rows[r].roles[0].gpu == local);
  }
  CHECK(rows[12].roles[0].index == 4);  // node 1's first extractor is extractor 4 of 8
  CHECK(rows[12].roles[0].count == 8);
  CHECK(layout.warnings().empty());
}

TEST_CASE("overlap4: the same ranks generate then extract") {
  const Layout layout = Layout::from_config(load("overlap4.yaml"));
  REQUIRE(layout.ranks_per_node() == 4);
  CHECK(layout.ranks_per_node_summary() == "generator 4 then extractor 4");
  const auto p = layout.placement(0, 2, 1);
  REQUIRE(p.phased());
  CHECK(p.roles[0].role == Role::generator);
  CHECK(p.roles[1].role == Role::extractor);
  CHECK(p.roles[0].gpu == 2);
  CHECK(p.roles[1].gpu == 2);
  CHECK(layout.warnings().empty());  // phases hold memory one at a time
}

TEST_CASE("spec layouts: tensor-parallel groups and shared GPUs") {
  const Layout two = Layout::from_config(load("spec-2gpu.yaml"));
  REQUIRE(two.ranks_per_node() == 4);
  const auto rows = two.table(2);
  CHECK(rows[0].find(Role::target_shard)->group == 0);
  CHECK(rows[1].find(Role::target_shard)->group_rank == 1);
  CHECK(rows[2].find(Role::draft)->gpu == 0);
  CHECK(rows[3].find(Role::draft)->group_size == 2);
  CHECK(rows[5].find(Role::target_shard)->group == 1);  // node 1 holds the second replica
  CHECK(two.warnings().empty());                        // 0.8 + 0.15 per GPU fits

  const Layout three = Layout::from_config(load("spec-3gpu.yaml"));
  REQUIRE(three.ranks_per_node() == 3);
  CHECK(three.placement(0, 2, 1).find(Role::draft)->gpu == 2);
}

TEST_CASE("ranks per GPU, replica-major order, and overcommitted memory") {
  const RunConfig c = config::parse_run_config(
      "job: spec_thinking\nmodel: {path: a}\ndraft_model: {path: b}\nspec: {problems: p}\nlayout:\n  roles:\n"
      "    target_shard: {gpus: [0, 1], ranks_per_gpu: 2, tensor_parallel: 2, memory_fraction: 0.5}\n"
      "    draft: {gpus: [1], memory_fraction: 0.2}\n",
      "tp.yaml");
  const Layout layout = Layout::from_config(c);
  REQUIRE(layout.ranks_per_node() == 5);
  const auto rows = layout.table(1);
  CHECK(rows[0].roles[0].gpu == 0);
  CHECK(rows[1].roles[0].gpu == 1);
  CHECK(rows[2].roles[0].gpu == 0);
  CHECK(rows[1].roles[0].group == 0);
  CHECK(rows[2].roles[0].group == 1);
  REQUIRE(layout.warnings().size() == 1);
  CHECK(layout.warnings()[0] ==
        "GPU 1: memory fractions add up to 1.20 (target_shard 0.50 + target_shard 0.50 + draft 0.20); lower "
        "memory_fraction so that the ranks on it fit");
  CHECK(format_role_table(layout, c, 1).find("warning: GPU 1: memory fractions add up to 1.20") != std::string::npos);
}

TEST_CASE("an automatic layout gives every rank the job's phases") {
  const RunConfig c = config::parse_run_config("job: selftest\n", "auto.yaml");
  const Layout layout = Layout::from_config(c, 3);
  CHECK(layout.automatic());
  CHECK(layout.ranks_per_node() == 3);
  const auto p = layout.placement(1, 2, 2);
  CHECK(p.rank == 5);
  CHECK(p.roles.size() == 2);
  CHECK(p.roles[1].index == 5);
  const RunConfig e = config::parse_run_config(
      "job: extract\nmodel: {path: m}\ndata: {path: d}\nextract: {layers: [1], output: o.h5}\n", "e.yaml");
  CHECK(Layout::from_config(e, 1).placement(0, 0, 1).roles.size() == 1);
}

TEST_CASE("plan text lists every rank with its node, GPU, role, group and memory") {
  const RunConfig c = load("spec-2gpu.yaml");
  const std::string text = format_role_table(Layout::from_config(c), c, 1);
  CHECK(text.find("job spec_thinking, 4 ranks per node (target_shard 2 + draft 2) x 1 node = 4 ranks") !=
        std::string::npos);
  CHECK(text.find("    0     0      0    0  target_shard +coordinator        tp0 0/2    0.80\n") !=
        std::string::npos);
  CHECK(text.find("    3     0      3    1  draft                            tp0 1/2    0.15\n") !=
        std::string::npos);
}

TEST_CASE("startup checks: world of 1, ranks per node, GPU ids") {
  const RunConfig c = load("split8.yaml");
  const Layout layout = Layout::from_config(c);
  LaunchFacts f;
  f.host = "gpu01";
  f.visible_gpus = 8;
  CHECK(error_of([&] { check_launch(layout, c, f); }).find(
            "the layout needs 8 ranks per node (generator 4 + extractor 4) but gpujob runs as a single process; "
            "start it with `mpirun -np 8 gpujob ...`") != std::string::npos);
  f.slurm_tasks = 8;
  CHECK(error_of([&] { check_launch(layout, c, f); }).rfind("srun started 8 tasks but each one is an MPI world of 1", 0) == 0);
  f.slurm_tasks = 0;
  f.world_size = 20;
  f.nodes = 2;
  f.local_size = 10;
  CHECK(error_of([&] { check_launch(layout, c, f); }).find(
            "node gpu01 has 10 ranks but") == 0);
  CHECK(error_of([&] { check_launch(layout, c, f); }).find(
            "layout needs 8 ranks per node (generator 4 + extractor 4); use -np 8 per node (-np 16 for 2 nodes)") !=
        std::string::npos);
  f.world_size = 8;
  f.nodes = 1;
  f.local_size = 8;
  CHECK(error_of([&] { check_launch(layout, c, f); }) == "no error");
  f.visible_gpus = 6;
  CHECK(error_of([&] { check_launch(layout, c, f); }).find(
            "split8.yaml:31: layout.roles.extractor.gpus[2]: GPU 6 does not exist (6 visible on node gpu01)") !=
        std::string::npos);
  // On the CPU GPU ids are slots and are not checked against the device...
  const RunConfig cpu = config::load_run_config(source_dir() + "/configs/split8.yaml",
                                                {config::parse_override("model.device=cpu")});
  CHECK(error_of([&] { check_launch(layout, cpu, f); }) == "no error");
  // ...unless the config states the node's GPU count.
  const RunConfig stated = config::load_run_config(
      source_dir() + "/configs/split8.yaml",
      {config::parse_override("model.device=cpu"), config::parse_override("layout.gpus_per_node=4")});
  CHECK(error_of([&] { check_launch(layout, stated, f); }).find(
            "layout.roles.extractor.gpus[0]: GPU 4 does not exist (4 visible on node gpu01)") != std::string::npos);
  CHECK(uses_cuda(cpu, 8) == false);
  CHECK(uses_cuda(c, 0) == true);
}
