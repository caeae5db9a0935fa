// The result of one cross-validated probe (one layer and position of a sweep); no libtorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gpujob::analysis {

struct ProbeResult {
  std::vector<double> fold_auroc;  // held-out AUROC of each fold
  double mean_auroc = 0;           // mean over folds
  double std_auroc = 0;            // sample standard deviation over folds (0 with one fold)
  int folds = 0;                   // folds used (fewer than asked when a class is small)
  int64_t samples = 0;             // labeled samples used (label 0 or 1)
  int64_t positives = 0;           // samples with label 1
  bool converged = true;           // every fold's fit converged
};

// One cell of a sweep.
struct SweepCell {
  int layer = 0;
  std::string position;  // last, first, middle, mean
  ProbeResult result;
};

}  // namespace gpujob::analysis
