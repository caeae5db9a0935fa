// HDF5 attributes and string datasets: variable-length UTF-8 strings and int64 scalars.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gpujob::io {

// Scalar attribute `name` on `object` (replaced when present); `path` names the file in errors.
void write_string_attribute(hid_t object, const std::string& name, const std::string& value, const std::string& path);
void write_int_attribute(hid_t object, const std::string& name, int64_t value, const std::string& path);
// Reads a string attribute stored as variable- or fixed-length string.
std::string read_string_attribute(hid_t object, const std::string& name, const std::string& path);
int64_t read_int_attribute(hid_t object, const std::string& name, const std::string& path);

// 1-D dataset of variable-length UTF-8 strings (serial files only: parallel HDF5 1.10 cannot write
// variable-length data). Replaces an existing dataset of the same name.
void write_string_dataset(hid_t parent, const std::string& name, const std::vector<std::string>& values,
                          const std::string& path);
// Reads a 1-D dataset of variable- or fixed-length strings.
std::vector<std::string> read_string_dataset(hid_t parent, const std::string& name, const std::string& path);

}  // namespace gpujob::io
