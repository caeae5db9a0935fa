#include "gpujob/io/h5_attributes.hpp"

#include "gpujob/io/hdf5_handle.hpp"

#include <cstdlib>
#include <cstring>

namespace gpujob::io {

namespace {

H5Handle vlen_utf8_type(const std::string& what) {
  H5Handle t = h5_type(H5Tcopy(H5T_C_S1), what + ": string type");
  H5_CHECK(H5Tset_size(t.get(), H5T_VARIABLE), what, ": string size");
  H5_CHECK(H5Tset_cset(t.get(), H5T_CSET_UTF8), what, ": character set");
  return t;
}

// Strings of a dataset or attribute whose file type is `file_type`, read with `read(mem_type, buffer)`.
template <typename Read>
std::vector<std::string> read_strings(hid_t file_type, size_t count, const std::string& what, Read read) {
  std::vector<std::string> out;
  if (H5Tis_variable_str(file_type) > 0) {
    H5Handle mem = vlen_utf8_type(what);
    std::vector<char*> pointers(count, nullptr);
    H5_CHECK(read(mem.get(), pointers.data()), what, ": read");
    for (char* p : pointers) {
      out.emplace_back(p ? p : "");
      if (p) H5free_memory(p);  // allocated by HDF5 for variable-length reads
    }
    return out;
  }
  const size_t width = H5Tget_size(file_type);
  H5Handle mem = h5_type(H5Tcopy(file_type), what + ": string type");
  std::vector<char> buffer(width * count);
  H5_CHECK(read(mem.get(), buffer.data()), what, ": read");
  for (size_t i = 0; i < count; ++i) {
    const char* p = &buffer[i * width];
    out.emplace_back(p, strnlen(p, width));
  }
  return out;
}

}  // namespace

void write_string_attribute(hid_t object, const std::string& name, const std::string& value, const std::string& path) {
  const std::string what = path + ": attribute " + name;
  if (H5Aexists(object, name.c_str()) > 0) H5_CHECK(H5Adelete(object, name.c_str()), what, ": replace");
  H5Handle type = vlen_utf8_type(what);
  H5Handle space = h5_space(H5Screate(H5S_SCALAR), what);
  H5Handle attribute = h5_attribute(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), what);
  const char* data = value.c_str();
  H5_CHECK(H5Awrite(attribute.get(), type.get(), &data), what, ": write");
}

void write_int_attribute(hid_t object, const std::string& name, int64_t value, const std::string& path) {
  const std::string what = path + ": attribute " + name;
  if (H5Aexists(object, name.c_str()) > 0) H5_CHECK(H5Adelete(object, name.c_str()), what, ": replace");
  H5Handle space = h5_space(H5Screate(H5S_SCALAR), what);
  H5Handle attribute = h5_attribute(H5Acreate2(object, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), what);
  H5_CHECK(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value), what, ": write");
}

std::string read_string_attribute(hid_t object, const std::string& name, const std::string& path) {
  const std::string what = path + ": attribute " + name;
  H5Handle attribute = h5_attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), what + ": missing");
  H5Handle type = h5_type(H5Aget_type(attribute.get()), what);
  GPUJOB_CHECK(H5Tget_class(type.get()) == H5T_STRING, what, ": expected a string");
  return read_strings(type.get(), 1, what, [&](hid_t mem, void* buf) { return H5Aread(attribute.get(), mem, buf); }).at(0);
}

int64_t read_int_attribute(hid_t object, const std::string& name, const std::string& path) {
  const std::string what = path + ": attribute " + name;
  H5Handle attribute = h5_attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), what + ": missing");
  int64_t value = 0;
  H5_CHECK(H5Aread(attribute.get(), H5T_NATIVE_INT64, &value), what, ": read (expected an integer)");
  return value;
}

void write_string_dataset(hid_t parent, const std::string& name, const std::vector<std::string>& values,
                          const std::string& path) {
  const std::string what = path + ": " + name;
  if (H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0) H5_CHECK(H5Ldelete(parent, name.c_str(), H5P_DEFAULT), what, ": replace");
  H5Handle type = vlen_utf8_type(what);
  const hsize_t n = values.size();
  H5Handle space = h5_space(H5Screate_simple(1, &n, nullptr), what);
  H5Handle dataset = h5_dataset(H5Dcreate2(parent, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), what);
  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  if (n > 0) H5_CHECK(H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()), what, ": write");
}

std::vector<std::string> read_string_dataset(hid_t parent, const std::string& name, const std::string& path) {
  const std::string what = path + ": " + name;
  H5Handle dataset = h5_dataset(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), what + ": missing");
  H5Handle type = h5_type(H5Dget_type(dataset.get()), what);
  GPUJOB_CHECK(H5Tget_class(type.get()) == H5T_STRING, what, ": expected strings");
  H5Handle space = h5_space(H5Dget_space(dataset.get()), what);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  H5_CHECK(n, what, ": size");
  if (n == 0) return {};
  return read_strings(type.get(), static_cast<size_t>(n), what,
                      [&](hid_t mem, void* buf) { return H5Dread(dataset.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); });
}

}  // namespace gpujob::io
