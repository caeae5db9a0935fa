// Cross-validated linear probes: stratified k folds, per-fold standardization, held-out AUROC.
#pragma once

#include "gpujob/analysis/logistic_regression.hpp"
#include "gpujob/analysis/probe_result.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace gpujob::analysis {

struct ProbeOptions {
  int folds = 5;                          // k of stratified k-fold cross-validation
  uint64_t seed = 0;                      // fold assignment (splitmix64 Fisher-Yates per class)
  LogisticRegressionOptions regression;   // l2 = 1 matches scikit-learn's default C = 1
};

// Fold of each sample: each class is shuffled with `seed` and dealt round-robin, so every fold
// gets floor or ceil of its share of each class. labels 0/1; folds >= 2.
std::vector<int> stratified_folds(const std::vector<int64_t>& labels, int folds, uint64_t seed);

// Features and 0/1 labels with unlabeled rows (label < 0, no parsed answer) dropped.
struct LabeledFeatures {
  at::Tensor features;          // [m, d] float64
  std::vector<int64_t> labels;  // [m] 0/1
};
// values: row-major [rows, cols] float32 (as read from an activation file); labels: [rows].
LabeledFeatures labeled_features(const float* values, int64_t rows, int64_t cols, const std::vector<int64_t>& labels);

// For each fold: standardize features with the training part's mean and standard deviation
// (constant columns are only centered), fit the logistic regression on the training part,
// score the held-out part, AUROC. Uses min(folds, smallest class size) folds; one-line error
// when a class has fewer than 2 samples.
ProbeResult cross_validate_probe(const at::Tensor& features, const std::vector<int64_t>& labels,
                                 const ProbeOptions& options = {});

}  // namespace gpujob::analysis
