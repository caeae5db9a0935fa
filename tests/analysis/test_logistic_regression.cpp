#include "gpujob/analysis/logistic_regression.hpp"
#include "gpujob/util/error.hpp"
#include "random_data.hpp"

// libtorch pulls in glog, whose CHECK(condition) would replace Catch's CHECK: drop it and
// include Catch last.
#undef CHECK
#include "catch.hpp"

using namespace gpujob::analysis;

namespace {

// Reference: plain Newton on the full (d + 1) x (d + 1) Hessian, float64, no line search, many
// iterations; independent of the library's Woodbury and line-search code.
std::pair<at::Tensor, double> reference_newton(const at::Tensor& X, const at::Tensor& y, double l2) {
  const int64_t n = X.size(0), d = X.size(1);
  const at::Tensor Xa = at::cat({X, at::ones({n, 1}, X.options())}, 1);
  at::Tensor penalty = l2 * at::eye(d + 1, X.options());
  penalty[d][d] = 0;
  at::Tensor theta = at::zeros({d + 1}, X.options());
  for (int i = 0; i < 60; ++i) {
    const at::Tensor p = at::sigmoid(at::mv(Xa, theta));
    const at::Tensor g = at::mv(Xa.t(), p - y) + at::mv(penalty, theta);
    const at::Tensor H = at::mm(Xa.t(), Xa * (p * (1 - p)).unsqueeze(1)) + penalty;
    theta = theta - at::linalg_solve(H, g.unsqueeze(1)).squeeze(1);
  }
  return {theta.narrow(0, 0, d), theta[d].item<double>()};
}

at::Tensor gradient(const LogisticModel& m, const at::Tensor& X, const at::Tensor& y, double l2) {
  const at::Tensor r = at::sigmoid(at::mv(X, m.weights) + m.bias) - y;
  return at::cat({at::mv(X.t(), r) + l2 * m.weights, r.sum().unsqueeze(0)});
}

}  // namespace

TEST_CASE("fit equals a plain Newton solve and has zero gradient (primal and Woodbury paths)") {
  TestRandom rng(11);
  // d < n uses the (d + 1) system; d >= n the n x n Woodbury system.
  for (const auto& [n, d, l2] : {std::tuple<int, int, double>{60, 5, 1.0}, {30, 80, 1.0}, {40, 40, 0.1}, {25, 300, 3.0}}) {
    const at::Tensor X = rng.normal_matrix(n, d);
    // Labels that depend on the features, with noise, so the optimum is far from zero.
    const at::Tensor logits = 2 * X.select(1, 0) - X.select(1, 1) + 0.5;
    std::vector<int64_t> labels;
    for (int i = 0; i < n; ++i) labels.push_back(rng.uniform() < 1 / (1 + std::exp(-logits[i].item<double>())) ? 1 : 0);
    const at::Tensor y = as_tensor(labels);
    const auto model = fit_logistic_regression(X, y, {l2, 100, 1e-10});
    INFO("n=" << n << " d=" << d << " l2=" << l2);
    CHECK(model.converged);
    CHECK(model.iterations < 30);
    CHECK(gradient(model, X, y, l2).abs().max().item<double>() < 1e-8);
    const auto [w, b] = reference_newton(X, y, l2);
    CHECK((model.weights - w).abs().max().item<double>() < 1e-6);
    CHECK(std::abs(model.bias - b) < 1e-6);
  }
}

TEST_CASE("separable data stays finite thanks to the penalty and scores the classes apart") {
  TestRandom rng(5);
  const at::Tensor X = rng.normal_matrix(50, 10);
  std::vector<int64_t> labels;
  for (int i = 0; i < 50; ++i) labels.push_back(X[i][0].item<double>() > 0 ? 1 : 0);
  const auto model = fit_logistic_regression(X, as_tensor(labels), {0.01, 100, 1e-9});
  CHECK(model.converged);
  const at::Tensor scores = decision_function(model, X);
  for (int i = 0; i < 50; ++i) CHECK((scores[i].item<double>() > 0) == (labels[i] == 1));
}

TEST_CASE("logistic regression input errors") {
  const at::Tensor X = at::zeros({4, 2}, at::kDouble);
  REQUIRE_THROWS_WITH(fit_logistic_regression(X, at::zeros({3}, at::kDouble)), Catch::Contains("labels must be [4]"));
  REQUIRE_THROWS_WITH(fit_logistic_regression(X, at::zeros({4}, at::kDouble), {0.0}), Catch::Contains("l2 must be positive"));
}
