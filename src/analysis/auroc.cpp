#include "gpujob/analysis/auroc.hpp"

#include "gpujob/util/error.hpp"

#include <algorithm>
#include <numeric>

namespace gpujob::analysis {

double auroc(const std::vector<double>& scores, const std::vector<int64_t>& labels) {
  GPUJOB_CHECK(scores.size() == labels.size(), "auroc: ", scores.size(), " scores for ", labels.size(), " labels");
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double average_rank = 0.5 * static_cast<double>(i + 1 + j);  // ranks i+1..j
    for (size_t k = i; k < j; ++k) {
      const int64_t label = labels[order[k]];
      GPUJOB_CHECK(label == 0 || label == 1, "auroc: labels must be 0 or 1, found ", label);
      if (label == 1) {
        positive_rank_sum += average_rank;
        ++positives;
      }
    }
    i = j;
  }
  const int64_t negatives = static_cast<int64_t>(n) - positives;
  GPUJOB_CHECK(positives > 0 && negatives > 0, "auroc: needs both classes, found ", positives, " positive and ",
               negatives, " negative samples");
  const double u = positive_rank_sum - 0.5 * static_cast<double>(positives) * static_cast<double>(positives + 1);
  return u / (static_cast<double>(positives) * static_cast<double>(negatives));
}

}  // namespace gpujob::analysis
