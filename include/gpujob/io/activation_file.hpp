// Parallel HDF5 activation file: created collectively up front, filled with independent raw
// writes from every extractor rank, chunk completion recorded durably, resumable after kill -9.
#pragma once

#include "gpujob/io/hdf5_handle.hpp"
#include "gpujob/io/jsonl.hpp"

#include <mpi.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace gpujob::io {

enum class ActivationDtype { kFloat32, kFloat16 };

// One dataset /activations/layer_{layer}/{position}.
struct ActivationDatasetName {
  int layer = 0;          // HF hidden_states[layer + 1]
  std::string position;   // "last", "first", "middle", "mean" ([N, hidden]) or "all" ([rows, hidden])
  bool operator<(const ActivationDatasetName& o) const { return layer != o.layer ? layer < o.layer : position < o.position; }
  bool operator==(const ActivationDatasetName& o) const { return layer == o.layer && position == o.position; }
};

// Everything needed to create the file before any activation exists.
struct ActivationFileSpec {
  std::vector<std::string> sample_ids;        // [N], data order; stored as int64 when every id is an
                                              // integer, else as fixed-length UTF-8 strings
  int64_t hidden_size = 0;                    // columns of every activation dataset
  std::vector<ActivationDatasetName> datasets;// (layer, position) pairs, each once
  std::vector<int64_t> token_capacity;        // [N] rows reserved per sample in the `all` datasets
                                              // (exact token counts when known, else an upper bound
                                              // such as prompt tokens + max_new_tokens); may be
                                              // empty when no `all` dataset is listed
  ActivationDtype dtype = ActivationDtype::kFloat32;
  std::map<std::string, std::string> string_attributes;  // root attributes: model, architecture,
                                                         // config, template, generation, ...
  std::map<std::string, int64_t> int_attributes;         // root attributes
  std::string fingerprint;                    // identity of the run's config (e.g. a hash of it);
                                              // a file with another fingerprint is never appended to

  int64_t total_token_rows() const;           // sum of token_capacity: rows of each `all` dataset
};

// The sidecar progress file of an activation file.
std::string progress_path(const std::string& h5_path);

// One open activation file on a communicator (the extractors'). Calls marked "collective" must be
// made by every rank of the communicator; the write and mark calls are independent: any rank, any
// time, no coordination.
//
// Crash safety: every dataset is created up front (contiguous layout, space allocated at
// creation) and flushed, so later writes change raw data only, never HDF5 metadata; a process
// killed at any point leaves a file that opens. A chunk counts as done only once its rows are on
// disk (fdatasync) and a line naming it has been appended (one write, fsync) to
// `<path>.progress.jsonl`: an unrecorded chunk is simply redone on resume.
class ActivationFile {
 public:
  // Collective. Creates (or truncates) `path` and removes a stale progress file.
  static ActivationFile create(const std::string& path, const ActivationFileSpec& spec, MPI_Comm comm);
  // Collective. Opens an existing file to finish it. The file's fingerprint and layout must equal
  // `spec`'s, else a one-line error suggesting a new output path or deleting the file.
  static ActivationFile open_for_resume(const std::string& path, const ActivationFileSpec& spec, MPI_Comm comm);
  // Collective. open_for_resume when `path` exists, else create.
  static ActivationFile create_or_resume(const std::string& path, const ActivationFileSpec& spec, MPI_Comm comm);

  ActivationFile(ActivationFile&&) noexcept;
  ActivationFile& operator=(ActivationFile&&) noexcept;
  ActivationFile(const ActivationFile&) = delete;
  ActivationFile& operator=(const ActivationFile&) = delete;
  ~ActivationFile();  // closes without finalizing (collective, like close())

  bool resumed() const;                            // opened an existing file
  bool complete() const;                           // finalized (on a resumed file: already done)
  const std::set<int64_t>& completed_chunks() const;  // chunks recorded as done when opened
  const std::vector<int64_t>& token_offsets() const;  // [N] first row of each sample in `all`
  const std::string& path() const;

  // Independent. Rows [first_sample, first_sample + count) of a per-sample dataset (position
  // last/first/middle/mean); `values` is row-major [count, hidden] float32 (converted to float16
  // by HDF5 when the file stores float16).
  void write_sample_rows(int layer, const std::string& position, int64_t first_sample, int64_t count,
                         const float* values);
  // Independent. The `num_tokens` rows of one sample in /activations/layer_{layer}/all, at its
  // token offset; num_tokens must not exceed the sample's capacity.
  void write_token_rows(int layer, int64_t sample, int64_t num_tokens, const float* values);
  // Independent. /samples/num_tokens for [first_sample, first_sample + count).
  void write_num_tokens(int64_t first_sample, int64_t count, const int64_t* num_tokens);
  // Independent. Call after every row of the chunk is written: makes the rows durable, then
  // appends {"chunk", "first_sample", "count", "rank"} to the progress file with fsync.
  void mark_chunk_done(int64_t chunk, int64_t first_sample, int64_t count);

  // Collective. Sets the root attribute `complete` to 1, flushes, and closes the file.
  void finalize();
  // Collective. Closes without marking complete (an interrupted run closes this way).
  void close();

 private:
  struct State;
  explicit ActivationFile(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// "/activations/layer_3/last".
std::string activation_dataset_path(int layer, const std::string& position);

}  // namespace gpujob::io
