#include "gpujob/analysis/probe.hpp"
#include "gpujob/util/error.hpp"
#include "random_data.hpp"

// libtorch pulls in glog, whose CHECK(condition) would replace Catch's CHECK: drop it and
// include Catch last.
#undef CHECK
#include "catch.hpp"

using namespace gpujob::analysis;

TEST_CASE("stratified folds are balanced per class and deterministic") {
  TestRandom rng(1);
  auto labels = rng.labels(103);
  const auto folds = stratified_folds(labels, 5, 42);
  CHECK(folds == stratified_folds(labels, 5, 42));
  CHECK(folds != stratified_folds(labels, 5, 43));
  for (int64_t cls : {0, 1}) {
    std::vector<int> count(5, 0);
    int64_t total = 0;
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == cls) {
        ++count[folds[i]];
        ++total;
      }
    for (int c : count) CHECK((c == total / 5 || c == total / 5 + 1));
  }
}

TEST_CASE("planted linear signal: AUROC near 1; shuffled labels: near 0.5 (200 x 3840, like the 12B setting)") {
  TestRandom rng(2024);
  const int64_t n = 200, d = 3840;
  const auto labels = rng.labels(n);
  at::Tensor X = rng.normal_matrix(n, d);
  // Plant the label along a fixed random direction, strongly enough to be linearly separable.
  at::Tensor direction = rng.normal_matrix(1, d).squeeze(0);
  direction = direction / direction.norm();
  X = X + 4.0 * (as_tensor(labels) * 2 - 1).unsqueeze(1) * direction.unsqueeze(0);
  const auto planted = cross_validate_probe(X, labels, {5, 0, {}});
  CHECK(planted.folds == 5);
  CHECK(planted.fold_auroc.size() == 5);
  CHECK(planted.converged);
  CHECK(planted.mean_auroc > 0.97);

  std::vector<int64_t> shuffled = rng.labels(n);  // independent of X
  const auto chance = cross_validate_probe(X, shuffled, {5, 0, {}});
  CHECK(std::abs(chance.mean_auroc - 0.5) < 0.1);
  CHECK(chance.std_auroc > 0);
}

TEST_CASE("unlabeled rows are dropped; small classes reduce the folds; too few is an error") {
  const std::vector<float> values = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  const auto lf = labeled_features(values.data(), 6, 2, {1, -1, 0, 1, -1, 0});
  CHECK(lf.labels == std::vector<int64_t>{1, 0, 1, 0});
  REQUIRE(lf.features.sizes() == at::IntArrayRef({4, 2}));
  CHECK(lf.features[1][0].item<double>() == 4.0);
  CHECK(lf.features.scalar_type() == at::kDouble);

  TestRandom rng(9);
  const at::Tensor X = rng.normal_matrix(20, 3);
  std::vector<int64_t> y(20, 0);
  y[0] = y[1] = y[2] = 1;
  CHECK(cross_validate_probe(X, y, {5, 0, {}}).folds == 3);
  y[1] = y[2] = 0;
  REQUIRE_THROWS_WITH(cross_validate_probe(X, y), "probe: needs at least 2 samples of each label, found 1 with label 1 and 19 with label 0");
}
