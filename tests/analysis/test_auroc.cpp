#include "gpujob/analysis/auroc.hpp"
#include "gpujob/util/error.hpp"
#include "random_data.hpp"

// libtorch pulls in glog, whose CHECK(condition) would replace Catch's CHECK: drop it and
// include Catch last.
#undef CHECK
#include "catch.hpp"

using gpujob::analysis::auroc;

namespace {
// The definition: over all (positive, negative) pairs, 1 when the positive scores higher, 1/2 on ties.
double brute_force(const std::vector<double>& s, const std::vector<int64_t>& y) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i)
    for (size_t j = 0; j < s.size(); ++j)
      if (y[i] == 1 && y[j] == 0) {
        pairs += 1;
        wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
      }
  return wins / pairs;
}
}  // namespace

TEST_CASE("AUROC equals brute-force pair counting, with and without ties") {
  TestRandom rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    const int n = 5 + trial * 3;
    std::vector<double> scores(n);
    auto labels = rng.labels(n);
    labels[0] = 0;
    labels[1] = 1;
    const bool ties = trial % 2 == 0;
    for (auto& s : scores) s = ties ? static_cast<double>(rng.next() % 4) : rng.normal();
    CHECK(auroc(scores, labels) == Approx(brute_force(scores, labels)).margin(1e-12));
  }
}

TEST_CASE("AUROC extremes and errors") {
  CHECK(auroc({1, 2, 3, 4}, {0, 0, 1, 1}) == 1.0);
  CHECK(auroc({4, 3, 2, 1}, {0, 0, 1, 1}) == 0.0);
  CHECK(auroc({1, 1, 1, 1}, {0, 1, 0, 1}) == 0.5);
  REQUIRE_THROWS_WITH(auroc({1, 2}, {1, 1}), "auroc: needs both classes, found 2 positive and 0 negative samples");
  REQUIRE_THROWS_WITH(auroc({1, 2}, {1}), "auroc: 2 scores for 1 labels");
  REQUIRE_THROWS_WITH(auroc({1, 2}, {0, 2}), "auroc: labels must be 0 or 1, found 2");
}
