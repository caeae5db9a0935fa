// Checked weight lookup.
#include "gpujob/model/weight_loader.hpp"

#include "gpujob/util/error.hpp"

namespace gpujob::model {
namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

WeightLoader::WeightLoader(const SafetensorsArchive& archive, std::string where,
                           at::ScalarType dtype, at::Device device)
    : archive_(archive), where_(std::move(where)), dtype_(dtype), device_(device) {}

at::Tensor WeightLoader::get(const std::string& name, const std::vector<int64_t>& expected_shape,
                             bool required, const ShardSlice& slice) {
  if (!archive_.contains(name)) {
    GPUJOB_CHECK(!required, where_, ": tensor ", name, " is missing (expected shape ",
                 shape_string(expected_shape), ")");
    return {};
  }
  const auto& found = archive_.entry(name).shape;
  GPUJOB_CHECK(found == expected_shape, archive_.file_of(name), ": tensor ", name, " has shape ",
               shape_string(found), ", expected ", shape_string(expected_shape));
  used_.insert(name);
  return archive_.load(name, dtype_, device_, slice.dim, slice.index, slice.count);
}

void WeightLoader::check_all_used(const std::string& architecture) const {
  for (const auto& name : archive_.names()) {
    if (used_.count(name)) continue;
    bool skipped = ends_with(name, "rotary_emb.inv_freq");  // buffers some old checkpoints saved
    for (const auto& prefix : skip_prefixes_) skipped = skipped || name.rfind(prefix, 0) == 0;
    GPUJOB_CHECK(skipped, archive_.file_of(name), ": unexpected tensor ", name, " (shape ",
                 shape_string(archive_.entry(name).shape), ") is not part of ", architecture);
  }
}

}  // namespace gpujob::model
