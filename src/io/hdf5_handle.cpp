#include "gpujob/io/hdf5_handle.hpp"

#include <vector>

namespace gpujob::io {

void quiet_hdf5_errors() {
  // H5Eset_auto2 is per thread in thread-safe builds; calling it again is cheap.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

std::string take_hdf5_error() {
  std::vector<std::string> frames;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
        auto* out = static_cast<std::vector<std::string>*>(data);
        out->push_back(std::string(e->func_name ? e->func_name : "?") + ": " + (e->desc ? e->desc : ""));
        return 0;
      },
      &frames);
  H5Eclear2(H5E_DEFAULT);
  if (frames.empty()) return "HDF5 call failed";
  if (frames.size() == 1) return "HDF5 " + frames.front();
  // Upward walk: the first frame is where the failure was detected, the last the API call.
  return "HDF5 " + frames.back() + " (cause: " + frames.front() + ")";
}

H5Handle::H5Handle(hid_t id, Closer closer, const std::string& what) : id_(id), closer_(closer) {
  if (id_ < 0) fail(what, ": ", take_hdf5_error());
}

H5Handle& H5Handle::operator=(H5Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    closer_ = other.closer_;
    other.id_ = -1;
  }
  return *this;
}

void H5Handle::close(const std::string& what) {
  if (id_ < 0) return;
  const hid_t id = id_;
  id_ = -1;
  H5_CHECK(closer_(id), what, ": close failed");
}

void H5Handle::reset() noexcept {
  if (id_ >= 0) closer_(id_);
  id_ = -1;
}

}  // namespace gpujob::io
