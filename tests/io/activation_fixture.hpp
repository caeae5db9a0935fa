// A small activation file spec, its known values, and helpers shared by the HDF5 tests.
#pragma once

#include "gpujob/io/activation_file.hpp"
#include "gpujob/io/activation_reader.hpp"

#include "mpi_session.hpp"

#include <cstdlib>
#include <string>
#include <vector>

// A folder every rank agrees on: rank 0 makes it, everyone receives its name.
inline std::string make_shared_temp_dir() {
  std::string dir(256, '\0');
  if (mpi_rank() == 0) {
    std::string pattern = "/tmp/gpujob-h5-XXXXXX";
    dir = ::mkdtemp(pattern.data());
    dir.resize(256, '\0');
  }
  MPI_Bcast(dir.data(), 256, MPI_CHAR, 0, MPI_COMM_WORLD);
  return std::string(dir.c_str());
}

// The shared folder, removed by rank 0 after every rank is done with it.
struct SharedTempDir {
  std::string path = make_shared_temp_dir();
  ~SharedTempDir() {
    MPI_Barrier(MPI_COMM_WORLD);
    if (mpi_rank() == 0) std::system(("rm -rf " + path).c_str());
  }
  operator std::string() const { return path; }
  std::string operator+(const char* name) const { return path + name; }
};

// 7 samples in 4 chunks of 2 (the last has 1), hidden size 5, three datasets of two layers.
inline gpujob::io::ActivationFileSpec small_spec(bool string_ids = false,
                                                 gpujob::io::ActivationDtype dtype = gpujob::io::ActivationDtype::kFloat32) {
  gpujob::io::ActivationFileSpec spec;
  for (int i = 0; i < 7; ++i) spec.sample_ids.push_back(string_ids ? "row-" + std::to_string(i * 3) : std::to_string(100 + i));
  spec.hidden_size = 5;
  spec.datasets = {{0, "last"}, {0, "all"}, {2, "mean"}};
  spec.token_capacity = {3, 1, 4, 1, 5, 9, 2};
  spec.dtype = dtype;
  spec.string_attributes = {{"model", "tiny"}, {"architecture", "LlamaForCausalLM"}, {"config", "job: extract\n"}};
  spec.int_attributes = {{"seed", 42}};
  spec.fingerprint = "fp-1";
  return spec;
}

constexpr int kNumChunks = 4;
inline int64_t chunk_first(int64_t chunk) { return chunk * 2; }
inline int64_t chunk_count(int64_t chunk) { return chunk == 3 ? 1 : 2; }
// Tokens actually produced per sample (<= capacity, so the `all` dataset has holes).
inline int64_t sample_tokens(int64_t sample) { return sample == 5 ? 7 : std::vector<int64_t>{3, 1, 4, 1, 5, 9, 2}[sample]; }

// The value every test expects at (dataset, row, column); exact in float16 too (multiples of 1/8).
inline float expected_value(int layer, const std::string& position, int64_t row, int64_t col) {
  const int p = position == "last" ? 1 : position == "all" ? 2 : 3;
  return static_cast<float>(layer * 100 + p * 10 + col) + static_cast<float>(row % 64) / 8.0f;
}

// Writes one chunk's rows (all datasets, num_tokens) and optionally records it.
inline void write_chunk(gpujob::io::ActivationFile& file, const gpujob::io::ActivationFileSpec& spec, int64_t chunk,
                        bool mark_done = true) {
  const int64_t first = chunk_first(chunk), count = chunk_count(chunk), hidden = spec.hidden_size;
  for (const auto& d : spec.datasets) {
    if (d.position == "all") {
      for (int64_t s = first; s < first + count; ++s) {
        std::vector<float> rows;
        for (int64_t t = 0; t < sample_tokens(s); ++t)
          for (int64_t c = 0; c < hidden; ++c) rows.push_back(expected_value(d.layer, d.position, file.token_offsets()[s] + t, c));
        file.write_token_rows(d.layer, s, sample_tokens(s), rows.data());
      }
    } else {
      std::vector<float> rows;
      for (int64_t s = first; s < first + count; ++s)
        for (int64_t c = 0; c < hidden; ++c) rows.push_back(expected_value(d.layer, d.position, s, c));
      file.write_sample_rows(d.layer, d.position, first, count, rows.data());
    }
  }
  std::vector<int64_t> tokens;
  for (int64_t s = first; s < first + count; ++s) tokens.push_back(sample_tokens(s));
  file.write_num_tokens(first, count, tokens.data());
  if (mark_done) file.mark_chunk_done(chunk, first, count);
}

// Number of values in `path` that differ from expected_value in the rows of `chunks`
// (`all` datasets: only the rows each sample produced).
inline int count_mismatches(const std::string& path, const gpujob::io::ActivationFileSpec& spec,
                            const std::vector<int64_t>& chunks, float tolerance = 0.0f) {
  int bad = 0;
  const auto offsets = gpujob::io::read_int64_dataset(path, "/samples/token_offset");
  const auto tokens = gpujob::io::read_int64_dataset(path, "/samples/num_tokens");
  for (const auto& d : spec.datasets) {
    const auto m = gpujob::io::read_activations(path, d.layer, d.position);
    for (int64_t chunk : chunks) {
      for (int64_t s = chunk_first(chunk); s < chunk_first(chunk) + chunk_count(chunk); ++s) {
        if (tokens[s] != sample_tokens(s)) ++bad;
        const int64_t row0 = d.position == "all" ? offsets[s] : s;
        const int64_t rows = d.position == "all" ? sample_tokens(s) : 1;
        for (int64_t r = row0; r < row0 + rows; ++r)
          for (int64_t c = 0; c < m.cols; ++c) {
            const float want = expected_value(d.layer, d.position, r, c);
            if (std::abs(m.values[r * m.cols + c] - want) > tolerance * std::abs(want)) ++bad;
          }
      }
    }
  }
  return bad;
}
