// WeightLoader: the one checked lookup every checkpoint tensor goes through (name, shape, required).
#pragma once

#include "gpujob/model/safetensors.hpp"

#include <ATen/ATen.h>

#include <set>
#include <string>
#include <vector>

namespace gpujob::model {

// Tensor-parallel slicing of one weight: dimension `dim` is cut into `count` equal parts and
// part `index` is loaded.
struct ShardSlice {
  int64_t dim = 0;
  int64_t index = 0;
  int64_t count = 1;
};

class WeightLoader {
 public:
  // `where` names the checkpoint (its directory) in messages about missing tensors.
  WeightLoader(const SafetensorsArchive& archive, std::string where, at::ScalarType dtype,
               at::Device device);

  // Loads `name`, checking its full (unsliced) shape. Missing required tensors, and any shape
  // mismatch, are one-line errors with the tensor, both shapes and the file. A missing optional
  // tensor returns an undefined tensor.
  at::Tensor get(const std::string& name, const std::vector<int64_t>& expected_shape,
                 bool required = true, const ShardSlice& slice = {});

  // Tensors under `prefix` are allowed and never read (e.g. a vision tower).
  void skip_prefix(const std::string& prefix) { skip_prefixes_.push_back(prefix); }
  // Marks one tensor as allowed without loading it (e.g. lm_head.weight of a tied model).
  void allow(const std::string& name) { used_.insert(name); }

  // Fails on the first tensor in the checkpoint that was neither loaded, allowed nor skipped.
  void check_all_used(const std::string& architecture) const;

 private:
  const SafetensorsArchive& archive_;
  std::string where_;
  at::ScalarType dtype_;
  at::Device device_;
  std::set<std::string> used_;
  std::vector<std::string> skip_prefixes_;
};

}  // namespace gpujob::model
