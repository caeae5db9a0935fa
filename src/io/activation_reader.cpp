#include "gpujob/io/activation_reader.hpp"

#include "gpujob/io/h5_attributes.hpp"
#include "gpujob/io/hdf5_handle.hpp"

#include <algorithm>

namespace gpujob::io {

namespace {

H5Handle open_serial(const std::string& path, unsigned flags) {
  quiet_hdf5_errors();
  H5Handle fapl = h5_plist(H5Pcreate(H5P_FILE_ACCESS), path + ": file access list");
#if H5_VERSION_GE(1, 10, 7)
  H5_CHECK(H5Pset_file_locking(fapl.get(), false, true), path, ": file locking");
#endif
  return h5_file(H5Fopen(path.c_str(), flags, fapl.get()), path + ": cannot open as HDF5");
}

// Dimensions of a dataset: {rows} or {rows, cols}.
std::vector<hsize_t> dims_of(hid_t dataset, const std::string& what) {
  H5Handle space = h5_space(H5Dget_space(dataset), what);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  H5_CHECK(rank, what, ": rank");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), what, ": dims");
  return dims;
}

}  // namespace

void write_sample_strings(const std::string& path, const SampleStrings& strings) {
  H5Handle file = open_serial(path, H5F_ACC_RDWR);
  const int64_t n = read_int_attribute(file.get(), "num_samples", path);
  H5Handle samples = h5_group(H5Gopen2(file.get(), "/samples", H5P_DEFAULT), path + ": /samples");
  const auto put = [&](const char* name, const std::vector<std::string>& values) {
    if (values.empty()) return;
    GPUJOB_CHECK(static_cast<int64_t>(values.size()) == n, path, ": /samples/", name, ": ", values.size(),
                 " values for ", n, " samples");
    write_string_dataset(samples.get(), name, values, path);
  };
  put("prompt", strings.prompt);
  put("completion", strings.completion);
  put("subject", strings.subject);
  put("predicted", strings.predicted);
  put("correct_answer", strings.correct_answer);
  if (!strings.label.empty()) {
    const std::string what = path + ": /samples/label";
    GPUJOB_CHECK(static_cast<int64_t>(strings.label.size()) == n, what, ": ", strings.label.size(), " values for ", n, " samples");
    if (H5Lexists(samples.get(), "label", H5P_DEFAULT) > 0) H5_CHECK(H5Ldelete(samples.get(), "label", H5P_DEFAULT), what, ": replace");
    const hsize_t dims = static_cast<hsize_t>(n);
    H5Handle space = h5_space(H5Screate_simple(1, &dims, nullptr), what);
    H5Handle dataset = h5_dataset(H5Dcreate2(samples.get(), "label", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), what);
    H5_CHECK(H5Dwrite(dataset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, strings.label.data()), what, ": write");
  }
  samples.close(path + ": /samples");
  H5_CHECK(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), path, ": flush");
  file.close(path);
}

ActivationFileInfo inspect_activation_file(const std::string& path) {
  H5Handle file = open_serial(path, H5F_ACC_RDONLY);
  ActivationFileInfo info;
  GPUJOB_CHECK(H5Aexists(file.get(), "config_fingerprint") > 0, path, ": not a gpujob activation file (no config_fingerprint attribute)");
  info.fingerprint = read_string_attribute(file.get(), "config_fingerprint", path);
  info.num_samples = read_int_attribute(file.get(), "num_samples", path);
  info.hidden_size = read_int_attribute(file.get(), "hidden_size", path);
  info.complete = read_int_attribute(file.get(), "complete", path) == 1;
  struct Names {
    std::vector<std::string> names;
  } attrs, layers;
  H5_CHECK(H5Aiterate2(file.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
                       [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
                         static_cast<Names*>(data)->names.emplace_back(name);
                         return 0;
                       },
                       &attrs),
           path, ": root attributes");
  for (const auto& name : attrs.names) {
    H5Handle a = h5_attribute(H5Aopen(file.get(), name.c_str(), H5P_DEFAULT), path + ": attribute " + name);
    H5Handle t = h5_type(H5Aget_type(a.get()), path + ": attribute " + name);
    if (H5Tget_class(t.get()) == H5T_STRING) info.string_attributes[name] = read_string_attribute(file.get(), name, path);
  }
  H5Handle group = h5_group(H5Gopen2(file.get(), "/activations", H5P_DEFAULT), path + ": /activations");
  const auto list = [&](hid_t g, Names* out) {
    H5_CHECK(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr,
                        [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
                          static_cast<Names*>(data)->names.emplace_back(name);
                          return 0;
                        },
                        out),
             path, ": listing /activations");
  };
  list(group.get(), &layers);
  for (const auto& layer_name : layers.names) {
    GPUJOB_CHECK(layer_name.rfind("layer_", 0) == 0, path, ": unexpected /activations/", layer_name);
    const int layer = std::stoi(layer_name.substr(6));
    H5Handle layer_group = h5_group(H5Gopen2(group.get(), layer_name.c_str(), H5P_DEFAULT), path + ": " + layer_name);
    Names positions;
    list(layer_group.get(), &positions);
    for (const auto& p : positions.names) info.datasets.push_back({layer, p});
  }
  std::sort(info.datasets.begin(), info.datasets.end());
  return info;
}

ActivationMatrix read_activations(const std::string& path, int layer, const std::string& position) {
  H5Handle file = open_serial(path, H5F_ACC_RDONLY);
  const std::string name = activation_dataset_path(layer, position);
  H5Handle dataset = h5_dataset(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), path + ": no dataset " + name);
  const auto dims = dims_of(dataset.get(), path + ": " + name);
  GPUJOB_CHECK(dims.size() == 2, path, ": ", name, ": expected 2 dimensions, found ", dims.size());
  ActivationMatrix m;
  m.rows = static_cast<int64_t>(dims[0]);
  m.cols = static_cast<int64_t>(dims[1]);
  m.values.resize(static_cast<size_t>(m.rows * m.cols));
  if (!m.values.empty()) {
    H5_CHECK(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.values.data()), path, ": ", name, ": read");
  }
  return m;
}

std::vector<int64_t> read_int64_dataset(const std::string& path, const std::string& name) {
  H5Handle file = open_serial(path, H5F_ACC_RDONLY);
  H5Handle dataset = h5_dataset(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), path + ": no dataset " + name);
  const auto dims = dims_of(dataset.get(), path + ": " + name);
  GPUJOB_CHECK(dims.size() == 1, path, ": ", name, ": expected 1 dimension, found ", dims.size());
  H5Handle type = h5_type(H5Dget_type(dataset.get()), path + ": " + name);
  GPUJOB_CHECK(H5Tget_class(type.get()) == H5T_INTEGER, path, ": ", name, ": expected integers");
  std::vector<int64_t> values(dims[0]);
  if (!values.empty()) {
    H5_CHECK(H5Dread(dataset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), path, ": ", name, ": read");
  }
  return values;
}

std::vector<std::string> read_sample_ids(const std::string& path) {
  H5Handle file = open_serial(path, H5F_ACC_RDONLY);
  H5Handle dataset = h5_dataset(H5Dopen2(file.get(), "/samples/id", H5P_DEFAULT), path + ": no dataset /samples/id");
  H5Handle type = h5_type(H5Dget_type(dataset.get()), path + ": /samples/id");
  if (H5Tget_class(type.get()) == H5T_STRING) return read_string_dataset(file.get(), "/samples/id", path);
  std::vector<std::string> ids;
  for (int64_t id : read_int64_dataset(path, "/samples/id")) ids.push_back(std::to_string(id));
  return ids;
}

std::vector<std::string> read_strings(const std::string& path, const std::string& name) {
  H5Handle file = open_serial(path, H5F_ACC_RDONLY);
  return read_string_dataset(file.get(), name, path);
}

}  // namespace gpujob::io
