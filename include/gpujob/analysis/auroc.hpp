// Area under the ROC curve from scores and binary labels (Mann-Whitney U, ties count one half).
#pragma once

#include <cstdint>
#include <vector>

namespace gpujob::analysis {

// Probability that a random positive scores above a random negative, ties counting 1/2;
// computed from average ranks in O(n log n). labels: 1 positive, 0 negative. One-line error
// when a class is empty or the sizes differ.
double auroc(const std::vector<double>& scores, const std::vector<int64_t>& labels);

}  // namespace gpujob::analysis
