#include "gpujob/analysis/logistic_regression.hpp"

#include "gpujob/util/error.hpp"

#include <algorithm>
#include <cmath>

namespace gpujob::analysis {

namespace {

// Sum of log(1 + exp(f)) - y f, stable for large |f|.
double data_loss(const at::Tensor& f, const at::Tensor& y) {
  const at::Tensor softplus = at::clamp_min(f, 0) + at::log1p(at::exp(-at::abs(f)));
  return (softplus - y * f).sum().item<double>();
}

double objective(const at::Tensor& X, const at::Tensor& y, const at::Tensor& w, double b, double l2) {
  return data_loss(at::mv(X, w) + b, y) + 0.5 * l2 * w.dot(w).item<double>();
}

}  // namespace

LogisticModel fit_logistic_regression(const at::Tensor& features, const at::Tensor& labels,
                                      const LogisticRegressionOptions& options) {
  GPUJOB_CHECK(features.dim() == 2, "logistic regression: features must be [n, d], found ", features.sizes());
  GPUJOB_CHECK(labels.dim() == 1 && labels.size(0) == features.size(0), "logistic regression: labels must be [",
               features.size(0), "], found ", labels.sizes());
  GPUJOB_CHECK(options.l2 > 0, "logistic regression: l2 must be positive, found ", options.l2);
  const auto f64 = at::TensorOptions().dtype(at::kDouble).device(at::kCPU);
  const at::Tensor X = features.to(f64).contiguous();
  const at::Tensor y = labels.to(f64).contiguous();
  const int64_t n = X.size(0), d = X.size(1);
  const double l2 = options.l2;
  const bool woodbury = d + 1 > n;
  // Gram matrix for the Woodbury path, computed once: K = X X^T [n, n].
  const at::Tensor gram = woodbury ? at::mm(X, X.t()) : at::Tensor();

  LogisticModel model;
  model.weights = at::zeros({d}, f64);
  const double mean_y = y.mean().item<double>();
  // Start from the intercept-only optimum: the log-odds of the base rate.
  model.bias = (mean_y > 0 && mean_y < 1) ? std::log(mean_y / (1 - mean_y)) : 0.0;
  const double tolerance = options.gradient_tolerance * std::max<double>(1.0, static_cast<double>(n));

  for (int iteration = 0;; ++iteration) {
    const at::Tensor& w = model.weights;
    const at::Tensor p = at::sigmoid(at::mv(X, w) + model.bias);
    const at::Tensor residual = p - y;
    const at::Tensor grad_w = at::mv(X.t(), residual) + l2 * w;
    const double grad_b = residual.sum().item<double>();
    model.gradient_norm = std::max(grad_w.abs().max().item<double>(), std::abs(grad_b));
    model.iterations = iteration;
    if (model.gradient_norm <= tolerance) {
      model.converged = true;
      break;
    }
    if (iteration >= options.max_iterations) break;

    // Newton direction: solve H [u; t] = [grad_w; grad_b] with
    // H = [[A, c], [c^T, e]],  A = l2 I + X^T S X,  c = X^T s,  e = sum(s),  s = p (1 - p).
    const at::Tensor s = p * (1 - p);
    const at::Tensor c = at::mv(X.t(), s);
    const double e = s.sum().item<double>();
    at::Tensor u;
    double t = 0;
    if (!woodbury) {
      at::Tensor H = at::zeros({d + 1, d + 1}, f64);
      H.narrow(0, 0, d).narrow(1, 0, d).copy_(at::mm(X.t(), X * s.unsqueeze(1)) + l2 * at::eye(d, f64));
      H.narrow(0, 0, d).select(1, d).copy_(c);
      H.select(0, d).narrow(0, 0, d).copy_(c);
      H[d][d] = e;
      const at::Tensor rhs = at::cat({grad_w, at::full({1}, grad_b, f64)});
      const at::Tensor step = at::linalg_solve(H, rhs.unsqueeze(1)).squeeze(1);
      u = step.narrow(0, 0, d);
      t = step[d].item<double>();
    } else {
      // A^{-1} v = (v - X^T D M^{-1} D X v) / l2,  D = diag(sqrt(s)),  M = l2 I + D K D  [n, n].
      const at::Tensor root = at::sqrt(s);
      const at::Tensor M = l2 * at::eye(n, f64) + root.unsqueeze(1) * gram * root.unsqueeze(0);
      const at::Tensor L = at::linalg_cholesky(M);
      const at::Tensor V = at::stack({grad_w, c}, 1);                  // [d, 2]
      const at::Tensor DXV = root.unsqueeze(1) * at::mm(X, V);         // [n, 2]
      const at::Tensor solved = at::cholesky_solve(DXV, L);            // M^{-1} D X V
      const at::Tensor AinvV = (V - at::mm(X.t(), root.unsqueeze(1) * solved)) / l2;
      const at::Tensor a1 = AinvV.select(1, 0), a2 = AinvV.select(1, 1);
      const double schur = std::max(e - c.dot(a2).item<double>(), 1e-300);
      t = (grad_b - c.dot(a1).item<double>()) / schur;
      u = a1 - a2 * t;
    }

    // Backtracking line search (Armijo): full Newton steps near the optimum, safe far from it.
    const double slope = -(grad_w.dot(u).item<double>() + grad_b * t);
    const double current = objective(X, y, w, model.bias, l2);
    double alpha = 1.0;
    at::Tensor next_w;
    double next_b = 0;
    for (int halving = 0; halving < 60; ++halving, alpha *= 0.5) {
      next_w = w - alpha * u;
      next_b = model.bias - alpha * t;
      if (objective(X, y, next_w, next_b, l2) <= current + 1e-4 * alpha * slope) break;
    }
    model.weights = next_w;
    model.bias = next_b;
  }
  return model;
}

at::Tensor decision_function(const LogisticModel& model, const at::Tensor& features) {
  GPUJOB_CHECK(features.dim() == 2 && features.size(1) == model.weights.size(0), "logistic regression: features must be [m, ",
               model.weights.size(0), "], found ", features.sizes());
  return at::mv(features.to(at::kDouble), model.weights) + model.bias;
}

}  // namespace gpujob::analysis
