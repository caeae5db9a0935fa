
#include "gpujob/io/dataset.hpp"
#include "gpujob/io/fingerprint.hpp"
#include "gpujob/util/error.hpp"
#include "temp_dir.hpp"

#include <algorithm>
#include <set>
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::io;

namespace {
std::string demo_path() { return source_dir() + "/configs/data/mc_demo.jsonl"; }

std::vector<std::string> ids_of(const std::vector<PromptRow>& rows) {
  std::vector<std::string> ids;
  for (const auto& r : rows) ids.push_back(r.id);
  return ids;
}
}  // namespace

TEST_CASE("splitmix64 matches its published reference sequence") {
  // Reference values of splitmix64 seeded with 1234567 (from the algorithm's public test vector).
  SplitMix64 rng(1234567);
  CHECK(rng.next() == 6457827717110365317ULL);
  CHECK(rng.next() == 3203168211198807973ULL);
  CHECK(rng.next() == 9817491932198370423ULL);
}

TEST_CASE("Fisher-Yates over splitmix64 is a deterministic permutation") {
  const auto a = shuffled_indices(100, 42);
  CHECK(a == shuffled_indices(100, 42));
  CHECK(a != shuffled_indices(100, 43));
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) CHECK(sorted[i] == i);
  // Each element lands in each place about equally often (uniformity, chi-square-like bound).
  std::vector<int> first_counts(5, 0);
  for (uint64_t seed = 0; seed < 5000; ++seed) ++first_counts[shuffled_indices(5, seed)[0]];
  for (int c : first_counts) CHECK(std::abs(c - 1000) < 150);
}

TEST_CASE("the demo multiple-choice set loads") {
  const auto set = load_prompt_set(demo_path());
  REQUIRE(set.rows.size() == 24);
  const auto& r = set.rows[0];
  CHECK(r.kind == PromptKind::kMultipleChoice);
  CHECK(r.id == "demo-000");
  CHECK_FALSE(r.id_is_integer);
  CHECK(r.choices.size() == 4);
  CHECK(r.answer == 1);
  CHECK(r.subject == "elementary_mathematics");
}

TEST_CASE("rows of every kind, ids from the field or the row index, letter answers") {
  TempDir dir;
  const auto path = dir.write("mixed.jsonl",
      "{\"question\": \"q?\", \"choices\": [\"x\", \"y\"], \"answer\": \"B\", \"subject\": \"s\"}\n"
      "{\"id\": 17, \"text\": \"hello\"}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n"
      "{\"id\": \"tok\", \"input_ids\": [1, 2, 3]}\n");
  const auto set = load_prompt_set(path);
  REQUIRE(set.rows.size() == 4);
  CHECK(set.rows[0].id == "0");
  CHECK(set.rows[0].answer == 1);
  CHECK(set.rows[1].id == "17");
  CHECK(set.rows[1].id_is_integer);
  CHECK(set.rows[1].kind == PromptKind::kText);
  CHECK(set.rows[2].id == "2");
  CHECK(set.rows[2].messages.at(0).content == "hi");
  CHECK(set.rows[3].input_ids == std::vector<int64_t>{1, 2, 3});
  CHECK_FALSE(set.rows[3].id_is_integer);
}

TEST_CASE("bad rows give one-line errors naming file, line and key") {
  TempDir dir;
  const auto expect_error = [&](const std::string& line2, const std::string& message) {
    const auto path = dir.write("bad.jsonl", "{\"text\": \"ok\"}\n" + line2 + "\n");
    REQUIRE_THROWS_WITH(load_prompt_set(path), path + ":2: " + message);
  };
  expect_error("{\"question\": \"q\", \"choices\": [\"a\", 3], \"answer\": 0}", "key \"choices\": expected an array of strings");
  expect_error("{\"question\": \"q\", \"choices\": \"a\", \"answer\": 0}", "key \"choices\": expected a non-empty array of strings");
  expect_error("{\"question\": \"q\", \"choices\": [\"a\"], \"answer\": 3}", "key \"answer\": expected an index in [0, 1), found 3");
  expect_error("{\"question\": \"q\", \"choices\": [\"a\"], \"answer\": \"?\"}", "key \"answer\": expected a letter A-Z or an index, found \"?\"");
  expect_error("{\"question\": 5, \"choices\": [\"a\"], \"answer\": 0}", "key \"question\": expected a string, found number");
  expect_error("{\"id\": 1.5, \"text\": \"x\"}", "key \"id\": expected a string or an integer, found number");
  expect_error("{\"id\": \"0\", \"text\": \"x\"}", "key \"id\": duplicate id \"0\"");
  expect_error("{\"input_ids\": [1, -2]}", "key \"input_ids\": expected an array of non-negative integers");
  expect_error("{\"foo\": 1}", "expected one of \"question\"+\"choices\", \"text\", \"messages\" or \"input_ids\"");
  expect_error("[1, 2]", "expected a JSON object, found array");
}

TEST_CASE("selection: subject filter, seeded shuffle, limit; deterministic and described") {
  const auto set = load_prompt_set(demo_path());
  DataSelection all;
  all.shuffle = false;
  CHECK(select_rows(set, all).size() == 24);

  DataSelection sel;
  sel.subjects = {"world_geography", "computer_science"};
  sel.seed = 7;
  sel.limit = 5;
  const auto rows = select_rows(set, sel);
  REQUIRE(rows.size() == 5);
  for (const auto& r : rows) CHECK((r.subject == "world_geography" || r.subject == "computer_science"));
  CHECK(ids_of(rows) == ids_of(select_rows(set, sel)));

  // The selection is the first `limit` of the shuffled filtered rows: a larger limit extends it.
  DataSelection more = sel;
  more.limit = 12;
  const auto longer = select_rows(set, more);
  REQUIRE(longer.size() == 12);
  CHECK(std::equal(rows.begin(), rows.end(), longer.begin(), [](const auto& a, const auto& b) { return a.id == b.id; }));
  // The 12 filtered rows, reordered.
  const auto longer_ids = ids_of(longer);
  CHECK(std::set<std::string>(longer_ids.begin(), longer_ids.end()).size() == 12);

  DataSelection other = sel;
  other.seed = 8;
  CHECK(ids_of(select_rows(set, other)) != ids_of(rows));

  // The description changes with every setting and is stable otherwise.
  CHECK(describe_selection(set, sel) == describe_selection(set, sel));
  CHECK(describe_selection(set, sel) != describe_selection(set, other));
  CHECK(describe_selection(set, sel) != describe_selection(set, more));
  CHECK(describe_selection(set, sel)["data_file"] == "mc_demo.jsonl");

  DataSelection missing;
  missing.subjects = {"astronomy"};
  REQUIRE_THROWS_WITH(select_rows(set, missing), Catch::Contains("subject \"astronomy\" selected but no row has it"));
}
