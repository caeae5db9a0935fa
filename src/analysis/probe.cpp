#include "gpujob/analysis/probe.hpp"

#include "gpujob/analysis/auroc.hpp"
#include "gpujob/util/error.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace gpujob::analysis {

namespace {

// splitmix64 (fixed, so folds never depend on the standard library).
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void shuffle(std::vector<int64_t>& items, uint64_t& state) {
  for (int64_t i = static_cast<int64_t>(items.size()) - 1; i > 0; --i) {
    const uint64_t bound = static_cast<uint64_t>(i + 1);
    const uint64_t threshold = (0 - bound) % bound;
    uint64_t r = splitmix64(state);
    while (r < threshold) r = splitmix64(state);
    std::swap(items[i], items[static_cast<int64_t>(r % bound)]);
  }
}

at::Tensor index_tensor(const std::vector<int64_t>& indices) {
  return at::tensor(at::ArrayRef<int64_t>(indices), at::TensorOptions().dtype(at::kLong));
}

}  // namespace

std::vector<int> stratified_folds(const std::vector<int64_t>& labels, int folds, uint64_t seed) {
  GPUJOB_CHECK(folds >= 2, "probe: folds must be >= 2, found ", folds);
  std::vector<int> fold(labels.size(), -1);
  uint64_t state = seed;
  int next = 0;  // continue dealing across classes so fold sizes stay balanced overall
  for (int64_t cls : {0, 1}) {
    std::vector<int64_t> members;
    for (size_t i = 0; i < labels.size(); ++i) {
      GPUJOB_CHECK(labels[i] == 0 || labels[i] == 1, "probe: labels must be 0 or 1, found ", labels[i], " at ", i);
      if (labels[i] == cls) members.push_back(static_cast<int64_t>(i));
    }
    shuffle(members, state);
    for (int64_t i : members) {
      fold[i] = next;
      next = (next + 1) % folds;
    }
  }
  return fold;
}

LabeledFeatures labeled_features(const float* values, int64_t rows, int64_t cols, const std::vector<int64_t>& labels) {
  GPUJOB_CHECK(static_cast<int64_t>(labels.size()) == rows, "probe: ", labels.size(), " labels for ", rows, " rows");
  std::vector<int64_t> keep;
  LabeledFeatures out;
  for (int64_t i = 0; i < rows; ++i) {
    if (labels[i] >= 0) {
      keep.push_back(i);
      out.labels.push_back(labels[i]);
    }
  }
  const at::Tensor all = at::from_blob(const_cast<float*>(values), {rows, cols}, at::TensorOptions().dtype(at::kFloat));
  out.features = all.index_select(0, index_tensor(keep)).to(at::kDouble);
  return out;
}

ProbeResult cross_validate_probe(const at::Tensor& features, const std::vector<int64_t>& labels, const ProbeOptions& options) {
  GPUJOB_CHECK(features.dim() == 2 && features.size(0) == static_cast<int64_t>(labels.size()), "probe: features ",
               features.sizes(), " for ", labels.size(), " labels");
  ProbeResult result;
  result.samples = static_cast<int64_t>(labels.size());
  result.positives = std::count(labels.begin(), labels.end(), int64_t{1});
  const int64_t smallest = std::min(result.positives, result.samples - result.positives);
  GPUJOB_CHECK(smallest >= 2, "probe: needs at least 2 samples of each label, found ", result.positives, " with label 1 and ",
               result.samples - result.positives, " with label 0");
  result.folds = static_cast<int>(std::min<int64_t>(options.folds, smallest));
  if (result.folds < options.folds) {
    spdlog::warn("probe: only {} samples in the smaller class, using {} folds instead of {}", smallest, result.folds, options.folds);
  }
  const auto fold = stratified_folds(labels, result.folds, options.seed);
  const at::Tensor X = features.to(at::kDouble);
  const at::Tensor y = index_tensor(labels).to(at::kDouble);
  for (int k = 0; k < result.folds; ++k) {
    std::vector<int64_t> train, test;
    for (size_t i = 0; i < labels.size(); ++i) (fold[i] == k ? test : train).push_back(static_cast<int64_t>(i));
    const at::Tensor train_index = index_tensor(train), test_index = index_tensor(test);
    const at::Tensor x_train = X.index_select(0, train_index);
    // Standardize with the training part only, so nothing of the held-out fold leaks in.
    const at::Tensor mean = x_train.mean(0);
    // Population standard deviation, spelled out: the std() overloads differ across libtorch versions.
    at::Tensor scale = at::sqrt((x_train - mean).pow(2).mean(0));
    scale = at::where(scale > 1e-12, scale, at::ones_like(scale));
    const auto model = fit_logistic_regression((x_train - mean) / scale, y.index_select(0, train_index), options.regression);
    result.converged = result.converged && model.converged;
    const at::Tensor scores = decision_function(model, (X.index_select(0, test_index) - mean) / scale).contiguous();
    std::vector<double> test_scores(scores.data_ptr<double>(), scores.data_ptr<double>() + scores.numel());
    std::vector<int64_t> test_labels;
    for (int64_t i : test) test_labels.push_back(labels[i]);
    result.fold_auroc.push_back(auroc(test_scores, test_labels));
  }
  const double n = static_cast<double>(result.fold_auroc.size());
  result.mean_auroc = std::accumulate(result.fold_auroc.begin(), result.fold_auroc.end(), 0.0) / n;
  double squares = 0;
  for (double a : result.fold_auroc) squares += (a - result.mean_auroc) * (a - result.mean_auroc);
  result.std_auroc = n > 1 ? std::sqrt(squares / (n - 1)) : 0.0;
  return result;
}

}  // namespace gpujob::analysis
