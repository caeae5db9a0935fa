// L2-regularized logistic regression fitted to convergence by Newton's method in float64.
#pragma once

#include <ATen/ATen.h>

namespace gpujob::analysis {

// Minimizes  sum_i [log(1 + exp(f_i)) - y_i f_i] + (l2 / 2) |w|^2,  f = X w + b,
// with the intercept b not penalized (scikit-learn's LogisticRegression with C = 1 / l2).
struct LogisticRegressionOptions {
  double l2 = 1.0;                    // penalty strength, > 0
  int max_iterations = 100;           // Newton steps (each with a backtracking line search)
  double gradient_tolerance = 1e-9;   // stop when max |gradient| <= tolerance * max(1, n)
};

struct LogisticModel {
  at::Tensor weights;        // [d] float64
  double bias = 0;
  int iterations = 0;        // Newton steps taken
  double gradient_norm = 0;  // max |gradient| at the solution
  bool converged = false;
};

// features [n, d], labels [n] with values 0/1 (any dtype; used as float64 on the CPU).
// Each Newton step solves a (d + 1) system when d < n, else an n x n one through the Woodbury
// identity, so 200 samples of 3840 features cost 200 x 200 solves. One-line error when the
// shapes disagree or l2 <= 0; a fit that does not converge is reported in `converged`.
LogisticModel fit_logistic_regression(const at::Tensor& features, const at::Tensor& labels,
                                      const LogisticRegressionOptions& options = {});

// X w + b for features [m, d]: [m] float64.
at::Tensor decision_function(const LogisticModel& model, const at::Tensor& features);

}  // namespace gpujob::analysis
