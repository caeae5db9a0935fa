#include "gpujob/io/activation_file.hpp"

#include "gpujob/io/h5_attributes.hpp"
#include "gpujob/util/error.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MPI_CHECK(call, ...)                                                              \
  do {                                                                                    \
    const int mpi_rc_ = (call);                                                           \
    if (mpi_rc_ != MPI_SUCCESS) ::gpujob::fail(__VA_ARGS__, ": MPI error code ", mpi_rc_); \
  } while (0)

namespace gpujob::io {

namespace {

const char* const kPositions[] = {"last", "first", "middle", "mean", "all"};

bool all_integer_ids(const std::vector<std::string>& ids) {
  for (const auto& id : ids) {
    if (id.empty() || id.size() > 18) return false;
    size_t i = id[0] == '-' ? 1 : 0;
    if (i == id.size()) return false;
    for (; i < id.size(); ++i) {
      if (id[i] < '0' || id[i] > '9') return false;
    }
  }
  return true;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* dtype_name(ActivationDtype d) { return d == ActivationDtype::kFloat16 ? "float16" : "float32"; }

// IEEE binary16, little endian: HDF5 1.10 has no predefined half type, so it is described by
// its bit fields (h5py and numpy read it as float16).
H5Handle float16_type() {
  H5Handle t = h5_type(H5Tcopy(H5T_IEEE_F32LE), "float16 type");
  H5_CHECK(H5Tset_fields(t.get(), 15, 10, 5, 0, 10), "float16 type: fields");
  H5_CHECK(H5Tset_size(t.get(), 2), "float16 type: size");
  H5_CHECK(H5Tset_ebias(t.get(), 15), "float16 type: exponent bias");
  return t;
}

void validate(const ActivationFileSpec& spec, const std::string& path) {
  const int64_t n = static_cast<int64_t>(spec.sample_ids.size());
  GPUJOB_CHECK(n > 0, path, ": activation file spec has no samples");
  GPUJOB_CHECK(spec.hidden_size > 0, path, ": activation file spec: hidden_size must be positive, found ", spec.hidden_size);
  GPUJOB_CHECK(!spec.datasets.empty(), path, ": activation file spec lists no (layer, position) datasets");
  GPUJOB_CHECK(!spec.fingerprint.empty(), path, ": activation file spec has no config fingerprint");
  std::set<ActivationDatasetName> seen;
  bool has_all = false;
  for (const auto& d : spec.datasets) {
    GPUJOB_CHECK(d.layer >= 0, path, ": dataset layer must be >= 0, found ", d.layer);
    GPUJOB_CHECK(std::find(std::begin(kPositions), std::end(kPositions), d.position) != std::end(kPositions), path,
                 ": unknown position \"", d.position, "\" (expected last, first, middle, mean or all)");
    GPUJOB_CHECK(seen.insert(d).second, path, ": dataset ", activation_dataset_path(d.layer, d.position), " listed twice");
    has_all = has_all || d.position == "all";
  }
  if (has_all) {
    GPUJOB_CHECK(static_cast<int64_t>(spec.token_capacity.size()) == n, path, ": token_capacity has ",
                 spec.token_capacity.size(), " entries for ", n, " samples (needed by the `all` datasets)");
    for (int64_t c : spec.token_capacity) GPUJOB_CHECK(c >= 0, path, ": negative token capacity ", c);
  } else {
    GPUJOB_CHECK(spec.token_capacity.empty() || static_cast<int64_t>(spec.token_capacity.size()) == n, path,
                 ": token_capacity has ", spec.token_capacity.size(), " entries for ", n, " samples");
  }
}

std::vector<int64_t> offsets_of(const ActivationFileSpec& spec) {
  std::vector<int64_t> offsets(spec.sample_ids.size(), 0);
  int64_t next = 0;
  for (size_t i = 0; i < spec.token_capacity.size(); ++i) {
    offsets[i] = next;
    next += spec.token_capacity[i];
  }
  return offsets;
}

H5Handle mpio_fapl(MPI_Comm comm, const std::string& path) {
  H5Handle fapl = h5_plist(H5Pcreate(H5P_FILE_ACCESS), path + ": file access list");
  H5_CHECK(H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL), path, ": MPI-IO driver");
#if H5_VERSION_GE(1, 10, 7)
  // flock() is missing or slow on several parallel file systems; one writer job owns the file.
  H5_CHECK(H5Pset_file_locking(fapl.get(), false, true), path, ": file locking");
#endif
  return fapl;
}

H5Handle create_dataset(hid_t parent, const std::string& name, hid_t type, int64_t rows, int64_t cols,
                        const std::string& path, bool fill_zero) {
  const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
  H5Handle space = h5_space(H5Screate_simple(cols > 0 ? 2 : 1, dims, nullptr), path + ": dataspace of " + name);
  H5Handle dcpl = h5_plist(H5Pcreate(H5P_DATASET_CREATE), path + ": creation list of " + name);
  // Contiguous and allocated now: later writes touch raw data only, never metadata.
  H5_CHECK(H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS), path, ": ", name, ": layout");
  H5_CHECK(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), path, ": ", name, ": allocation time");
  // Activation rows are all written by their chunks; writing fill values first would double the I/O.
  H5_CHECK(H5Pset_fill_time(dcpl.get(), fill_zero ? H5D_FILL_TIME_ALLOC : H5D_FILL_TIME_NEVER), path, ": ", name,
           ": fill time");
  H5_CHECK(H5Pset_obj_track_times(dcpl.get(), false), path, ": ", name, ": times");
  return h5_dataset(H5Dcreate2(parent, name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                    path + ": cannot create dataset " + name);
}

// Independent write of rows [row0, row0 + count) x cols of a 1-D (cols == 0) or 2-D dataset.
void write_rows(hid_t dataset, hid_t mem_type, int64_t row0, int64_t count, int64_t cols, const void* data,
                const std::string& what) {
  H5Handle file_space = h5_space(H5Dget_space(dataset), what + ": dataspace");
  hsize_t dims[2] = {0, 0};
  const int rank = H5Sget_simple_extent_dims(file_space.get(), dims, nullptr);
  H5_CHECK(rank, what, ": dataspace dims");
  GPUJOB_CHECK(row0 >= 0 && count >= 0 && static_cast<hsize_t>(row0 + count) <= dims[0], what, ": rows [", row0, ", ",
               row0 + count, ") outside [0, ", dims[0], ")");
  if (count == 0) return;
  const hsize_t start[2] = {static_cast<hsize_t>(row0), 0};
  const hsize_t extent[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(cols)};
  H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr), what, ": selection");
  H5Handle mem_space = h5_space(H5Screate_simple(rank, extent, nullptr), what + ": memory space");
  H5Handle xfer = h5_plist(H5Pcreate(H5P_DATASET_XFER), what + ": transfer list");
  H5_CHECK(H5Pset_dxpl_mpio(xfer.get(), H5FD_MPIO_INDEPENDENT), what, ": independent transfer");
  H5_CHECK(H5Dwrite(dataset, mem_type, mem_space.get(), file_space.get(), xfer.get(), data), what, ": write failed");
}

}  // namespace

int64_t ActivationFileSpec::total_token_rows() const {
  int64_t total = 0;
  for (int64_t c : token_capacity) total += c;
  return total;
}

std::string progress_path(const std::string& h5_path) { return h5_path + ".progress.jsonl"; }

std::string activation_dataset_path(int layer, const std::string& position) {
  return "/activations/layer_" + std::to_string(layer) + "/" + position;
}

struct ActivationFile::State {
  std::string path;
  ActivationFileSpec spec;
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  bool resumed = false;
  bool complete = false;
  std::set<int64_t> completed_chunks;
  std::vector<int64_t> token_offsets;
  H5Handle file;
  std::map<ActivationDatasetName, H5Handle> activations;
  H5Handle num_tokens;
  int data_fd = -1;  // POSIX descriptor on the same file, only to fdatasync chunk rows
  std::unique_ptr<JsonlAppender> progress;

  // The state of a file at path for spec over comm, once the spec is checked (create and resume).
  static std::unique_ptr<State> begin(const std::string& path, const ActivationFileSpec& spec, MPI_Comm comm) {
    quiet_hdf5_errors();
    validate(spec, path);
    auto s = std::make_unique<State>();
    s->path = path;
    s->spec = spec;
    s->comm = comm;
    MPI_CHECK(MPI_Comm_rank(comm, &s->rank), path, ": MPI_Comm_rank");
    s->token_offsets = offsets_of(spec);
    return s;
  }

  ~State() { shut(); }
  void shut() noexcept {
    activations.clear();
    num_tokens.reset();
    file.reset();
    if (data_fd >= 0) ::close(data_fd);
    data_fd = -1;
    progress.reset();
  }
  hid_t dataset(int layer, const std::string& position) const {
    const auto it = activations.find({layer, position});
    GPUJOB_CHECK(it != activations.end(), path, ": no dataset ", activation_dataset_path(layer, position),
                 " in this file's spec");
    return it->second.get();
  }
  // Opens every dataset and the helpers every rank needs for independent writes.
  void open_writers() {
    for (const auto& d : spec.datasets) {
      const auto name = activation_dataset_path(d.layer, d.position);
      activations.emplace(d, h5_dataset(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), path + ": missing dataset " + name));
    }
    num_tokens = h5_dataset(H5Dopen2(file.get(), "/samples/num_tokens", H5P_DEFAULT), path + ": missing /samples/num_tokens");
    data_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    GPUJOB_CHECK(data_fd >= 0, path, ": cannot open for fdatasync: ", std::strerror(errno));
  }
  // Rank 0 alone repairs a torn tail while nobody appends, then every rank opens for appending.
  void open_progress() {
    if (rank == 0) progress = std::make_unique<JsonlAppender>(progress_path(path), true);
    MPI_CHECK(MPI_Barrier(comm), path, ": barrier");
    if (rank != 0) progress = std::make_unique<JsonlAppender>(progress_path(path), false);
  }
};

ActivationFile::ActivationFile(std::unique_ptr<State> state) : state_(std::move(state)) {}
ActivationFile::ActivationFile(ActivationFile&&) noexcept = default;
ActivationFile& ActivationFile::operator=(ActivationFile&&) noexcept = default;
ActivationFile::~ActivationFile() = default;

ActivationFile ActivationFile::create(const std::string& path, const ActivationFileSpec& spec, MPI_Comm comm) {
  auto s = State::begin(path, spec, comm);
  if (s->rank == 0 && ::unlink(progress_path(path).c_str()) != 0 && errno != ENOENT) {
    fail(progress_path(path), ": cannot remove the stale progress file: ", std::strerror(errno));
  }
  MPI_CHECK(MPI_Barrier(comm), path, ": barrier");

  const H5Handle fapl = mpio_fapl(comm, path);
  s->file = h5_file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), path + ": cannot create");
  const hid_t file = s->file.get();
  const int64_t n = static_cast<int64_t>(spec.sample_ids.size());

  // Groups, then datasets; every one exists before the first activation is written.
  H5Handle samples = h5_group(H5Gcreate2(file, "/samples", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path + ": /samples");
  H5Handle activations = h5_group(H5Gcreate2(file, "/activations", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path + ": /activations");
  std::set<int> layers;
  for (const auto& d : spec.datasets) layers.insert(d.layer);
  const H5Handle half = float16_type();
  const hid_t value_type = spec.dtype == ActivationDtype::kFloat16 ? half.get() : H5T_IEEE_F32LE;
  for (int layer : layers) {
    const std::string group_name = "layer_" + std::to_string(layer);
    H5Handle group = h5_group(H5Gcreate2(activations.get(), group_name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                              path + ": /activations/" + group_name);
    for (const auto& d : spec.datasets) {
      if (d.layer != layer) continue;
      const int64_t rows = d.position == "all" ? spec.total_token_rows() : n;
      create_dataset(group.get(), d.position, value_type, rows, spec.hidden_size, path, false);
    }
  }
  const bool integer_ids = all_integer_ids(spec.sample_ids);
  H5Handle id_type;
  if (!integer_ids) {
    size_t width = 1;
    for (const auto& id : spec.sample_ids) width = std::max(width, id.size());
    id_type = h5_type(H5Tcopy(H5T_C_S1), path + ": id type");
    H5_CHECK(H5Tset_size(id_type.get(), width), path, ": /samples/id: string size");
    H5_CHECK(H5Tset_strpad(id_type.get(), H5T_STR_NULLPAD), path, ": /samples/id: padding");
    H5_CHECK(H5Tset_cset(id_type.get(), H5T_CSET_UTF8), path, ": /samples/id: character set");
  }
  H5Handle ids = create_dataset(samples.get(), "id", integer_ids ? H5T_STD_I64LE : id_type.get(), n, 0, path, false);
  H5Handle offsets = create_dataset(samples.get(), "token_offset", H5T_STD_I64LE, n, 0, path, false);
  create_dataset(samples.get(), "num_tokens", H5T_STD_I64LE, n, 0, path, true);

  // Root attributes (metadata: same values on every rank, written collectively).
  for (const auto& [name, value] : spec.string_attributes) write_string_attribute(file, name, value, path);
  for (const auto& [name, value] : spec.int_attributes) write_int_attribute(file, name, value, path);
  write_string_attribute(file, "config_fingerprint", spec.fingerprint, path);
  write_string_attribute(file, "gpujob_version", GPUJOB_VERSION, path);
  // Metadata writes must carry the same bytes on every rank: rank 0's clock decides.
  char created[32] = {0};
  if (s->rank == 0) std::snprintf(created, sizeof created, "%s", utc_now().c_str());
  MPI_CHECK(MPI_Bcast(created, sizeof created, MPI_CHAR, 0, comm), path, ": broadcast");
  write_string_attribute(file, "creation_time", created, path);
  write_string_attribute(file, "dtype", dtype_name(spec.dtype), path);
  write_int_attribute(file, "num_samples", n, path);
  write_int_attribute(file, "hidden_size", spec.hidden_size, path);
  write_int_attribute(file, "complete", 0, path);

  // Small per-sample data known now, written once by rank 0.
  if (s->rank == 0) {
    if (integer_ids) {
      std::vector<int64_t> values;
      for (const auto& id : spec.sample_ids) values.push_back(std::stoll(id));
      write_rows(ids.get(), H5T_NATIVE_INT64, 0, n, 0, values.data(), path + ": /samples/id");
    } else {
      const size_t width = H5Tget_size(id_type.get());
      std::vector<char> packed(width * n, '\0');
      for (int64_t i = 0; i < n; ++i) std::memcpy(&packed[i * width], spec.sample_ids[i].data(), spec.sample_ids[i].size());
      write_rows(ids.get(), id_type.get(), 0, n, 0, packed.data(), path + ": /samples/id");
    }
    write_rows(offsets.get(), H5T_NATIVE_INT64, 0, n, 0, s->token_offsets.data(), path + ": /samples/token_offset");
  }
  ids.close(path + ": /samples/id");
  offsets.close(path + ": /samples/token_offset");
  samples.close(path + ": /samples");
  activations.close(path + ": /activations");
  // Everything structural reaches the disk now; from here on only raw rows change.
  H5_CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL), path, ": flush after creation");
  s->open_writers();
  s->open_progress();
  return ActivationFile(std::move(s));
}

ActivationFile ActivationFile::open_for_resume(const std::string& path, const ActivationFileSpec& spec, MPI_Comm comm) {
  auto s = State::begin(path, spec, comm);
  s->resumed = true;
  const std::string advice = "; write to a new output path, or delete " + path + " and " + progress_path(path) + " to start over";
  const H5Handle fapl = mpio_fapl(comm, path);
  s->file = h5_file(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get()), path + ": cannot open for resuming" + advice);
  const hid_t file = s->file.get();
  GPUJOB_CHECK(H5Aexists(file, "config_fingerprint") > 0, path, ": not a gpujob activation file (no config_fingerprint attribute)", advice);
  const std::string stored = read_string_attribute(file, "config_fingerprint", path);
  GPUJOB_CHECK(stored == spec.fingerprint, path, ": written by a different configuration (fingerprint ", stored,
               ", this run ", spec.fingerprint, ")", advice);
  // The fingerprint should cover the layout; check it anyway, a mismatch would corrupt the file.
  const int64_t n = static_cast<int64_t>(spec.sample_ids.size());
  GPUJOB_CHECK(read_int_attribute(file, "num_samples", path) == n, path, ": holds ", read_int_attribute(file, "num_samples", path),
               " samples, this run has ", n, advice);
  GPUJOB_CHECK(read_int_attribute(file, "hidden_size", path) == spec.hidden_size, path, ": hidden size differs from this run's", advice);
  GPUJOB_CHECK(read_string_attribute(file, "dtype", path) == dtype_name(spec.dtype), path, ": dtype differs from this run's", advice);
  s->complete = read_int_attribute(file, "complete", path) == 1;
  {
    H5Handle offsets = h5_dataset(H5Dopen2(file, "/samples/token_offset", H5P_DEFAULT), path + ": /samples/token_offset");
    std::vector<int64_t> stored_offsets(n);
    H5_CHECK(H5Dread(offsets.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, stored_offsets.data()), path,
             ": read /samples/token_offset");
    GPUJOB_CHECK(stored_offsets == s->token_offsets, path, ": token offsets differ from this run's", advice);
  }
  s->open_writers();  // also checks that every dataset of the spec exists
  for (const auto& [name, dataset] : s->activations) {
    H5Handle space = h5_space(H5Dget_space(dataset.get()), path + ": dataspace");
    hsize_t dims[2] = {0, 0};
    H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims, nullptr), path, ": dims");
    const int64_t rows = name.position == "all" ? spec.total_token_rows() : n;
    GPUJOB_CHECK(static_cast<int64_t>(dims[0]) == rows && static_cast<int64_t>(dims[1]) == spec.hidden_size, path, ": ",
                 activation_dataset_path(name.layer, name.position), " is [", dims[0], ", ", dims[1], "], expected [", rows,
                 ", ", spec.hidden_size, "]", advice);
  }
  s->open_progress();
  // A garbled line (a file system that does not keep O_APPEND writes whole) only means that its
  // chunk is redone: skip it rather than refuse to resume.
  for (const auto& rec : read_jsonl_if_exists(progress_path(path), true)) {
    const auto& v = rec.value;
    if (!v.is_object() || v.contains("complete")) continue;
    if (!v.contains("chunk") || !v["chunk"].is_number_integer()) {
      spdlog::warn("{}:{}: skipping a record without an integer \"chunk\"", progress_path(path), rec.line);
      continue;
    }
    GPUJOB_CHECK(v.value("fingerprint", std::string()) == spec.fingerprint, progress_path(path), ":", rec.line,
                 ": records a chunk of another configuration", advice);
    s->completed_chunks.insert(v["chunk"].get<int64_t>());
  }
  MPI_CHECK(MPI_Barrier(comm), path, ": barrier");  // nobody appends before everyone has read
  return ActivationFile(std::move(s));
}

ActivationFile ActivationFile::create_or_resume(const std::string& path, const ActivationFileSpec& spec, MPI_Comm comm) {
  struct stat st {};
  // Every rank must take the same branch: rank 0 decides.
  int exists = ::stat(path.c_str(), &st) == 0 ? 1 : 0;
  MPI_CHECK(MPI_Bcast(&exists, 1, MPI_INT, 0, comm), path, ": broadcast");
  return exists ? open_for_resume(path, spec, comm) : create(path, spec, comm);
}

bool ActivationFile::resumed() const { return state_->resumed; }
bool ActivationFile::complete() const { return state_->complete; }
const std::set<int64_t>& ActivationFile::completed_chunks() const { return state_->completed_chunks; }
const std::vector<int64_t>& ActivationFile::token_offsets() const { return state_->token_offsets; }
const std::string& ActivationFile::path() const { return state_->path; }

void ActivationFile::write_sample_rows(int layer, const std::string& position, int64_t first_sample, int64_t count,
                                       const float* values) {
  GPUJOB_CHECK(state_ && state_->file.valid(), "activation file is closed");
  GPUJOB_CHECK(position != "all", state_->path, ": use write_token_rows for ", activation_dataset_path(layer, position));
  write_rows(state_->dataset(layer, position), H5T_NATIVE_FLOAT, first_sample, count, state_->spec.hidden_size, values,
             state_->path + ": " + activation_dataset_path(layer, position));
}

void ActivationFile::write_token_rows(int layer, int64_t sample, int64_t num_tokens, const float* values) {
  auto& s = *state_;
  GPUJOB_CHECK(s.file.valid(), "activation file is closed");
  const auto what = s.path + ": " + activation_dataset_path(layer, "all");
  GPUJOB_CHECK(sample >= 0 && sample < static_cast<int64_t>(s.token_offsets.size()), what, ": sample ", sample, " out of range");
  GPUJOB_CHECK(num_tokens <= s.spec.token_capacity[sample], what, ": sample ", sample, " has ", num_tokens,
               " tokens but ", s.spec.token_capacity[sample], " rows were reserved");
  write_rows(s.dataset(layer, "all"), H5T_NATIVE_FLOAT, s.token_offsets[sample], num_tokens, s.spec.hidden_size, values, what);
}

void ActivationFile::write_num_tokens(int64_t first_sample, int64_t count, const int64_t* num_tokens) {
  GPUJOB_CHECK(state_ && state_->file.valid(), "activation file is closed");
  write_rows(state_->num_tokens.get(), H5T_NATIVE_INT64, first_sample, count, 0, num_tokens,
             state_->path + ": /samples/num_tokens");
}

void ActivationFile::mark_chunk_done(int64_t chunk, int64_t first_sample, int64_t count) {
  auto& s = *state_;
  GPUJOB_CHECK(s.file.valid(), "activation file is closed");
  // The rows went through MPI-IO into the kernel; only a sync makes them survive a node crash,
  // and it must happen before the record that claims them.
  GPUJOB_CHECK(::fdatasync(s.data_fd) == 0, s.path, ": fdatasync failed: ", std::strerror(errno));
  s.progress->append({{"chunk", chunk},
                      {"first_sample", first_sample},
                      {"count", count},
                      {"rank", s.rank},
                      {"fingerprint", s.spec.fingerprint}});
}

void ActivationFile::finalize() {
  auto& s = *state_;
  GPUJOB_CHECK(s.file.valid(), "activation file is closed");
  // The attribute exists since creation: this rewrites a value in place, it adds no metadata.
  H5Handle attribute = h5_attribute(H5Aopen(s.file.get(), "complete", H5P_DEFAULT), s.path + ": attribute complete");
  const int64_t one = 1;
  H5_CHECK(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &one), s.path, ": attribute complete");
  attribute.close(s.path + ": attribute complete");
  H5_CHECK(H5Fflush(s.file.get(), H5F_SCOPE_GLOBAL), s.path, ": flush at finalize");
  if (s.rank == 0) s.progress->append({{"complete", true}, {"fingerprint", s.spec.fingerprint}});
  s.complete = true;
  close();
}

void ActivationFile::close() {
  if (!state_ || !state_->file.valid()) return;
  auto& s = *state_;
  s.activations.clear();
  s.num_tokens.reset();
  s.file.close(s.path + ": closing");
  s.shut();
}

}  // namespace gpujob::io
