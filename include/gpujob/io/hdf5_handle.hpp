// RAII owners for HDF5 ids and the H5_CHECK macro that turns a failed call into a one-line Error.
#pragma once

#include "gpujob/util/error.hpp"

#include <hdf5.h>

#include <string>

namespace gpujob::io {

// Turns off HDF5's automatic printing of its error stack (once per process/thread): failures are
// reported through H5_CHECK as one line instead of a page of stack frames on stderr.
void quiet_hdf5_errors();

// The innermost and outermost messages of HDF5's current error stack, then clears it.
std::string take_hdf5_error();

// Owns one HDF5 id (file, group, dataset, dataspace, datatype, attribute, property list) and
// closes it with the matching H5?close. Move-only.
class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  // `what` names the object in the error when `id` is negative (the call failed).
  H5Handle(hid_t id, Closer closer, const std::string& what);
  ~H5Handle() { reset(); }
  H5Handle(H5Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
  H5Handle& operator=(H5Handle&& other) noexcept;
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now; a failed close of a file is an error (data may not have reached the disk).
  void close(const std::string& what);
  void reset() noexcept;

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

inline H5Handle h5_file(hid_t id, const std::string& what) { return H5Handle(id, H5Fclose, what); }
inline H5Handle h5_group(hid_t id, const std::string& what) { return H5Handle(id, H5Gclose, what); }
inline H5Handle h5_dataset(hid_t id, const std::string& what) { return H5Handle(id, H5Dclose, what); }
inline H5Handle h5_space(hid_t id, const std::string& what) { return H5Handle(id, H5Sclose, what); }
inline H5Handle h5_type(hid_t id, const std::string& what) { return H5Handle(id, H5Tclose, what); }
inline H5Handle h5_attribute(hid_t id, const std::string& what) { return H5Handle(id, H5Aclose, what); }
inline H5Handle h5_plist(hid_t id, const std::string& what) { return H5Handle(id, H5Pclose, what); }

}  // namespace gpujob::io

// H5_CHECK(call, parts...): throws gpujob::Error "parts: HDF5 <innermost message>" when the
// call returns a negative value. `parts` name the file and dataset.
#define H5_CHECK(call, ...)                                                                 \
  do {                                                                                      \
    if ((call) < 0) ::gpujob::fail(__VA_ARGS__, ": ", ::gpujob::io::take_hdf5_error());     \
  } while (0)
