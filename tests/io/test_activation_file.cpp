// Parallel HDF5 activation file; run with 1 rank and under mpirun with 3 ranks.

#include "activation_fixture.hpp"
#include "temp_dir.hpp"
#include "gpujob/util/error.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::io;

namespace {

std::vector<int64_t> all_chunks() { return {0, 1, 2, 3}; }

// Chunks are spread round-robin over the ranks: each rank writes disjoint rows.
void write_my_chunks(ActivationFile& file, const ActivationFileSpec& spec, const std::set<int64_t>& skip = {}) {
  for (int64_t c = 0; c < kNumChunks; ++c) {
    if (c % mpi_size() == mpi_rank() && !skip.count(c)) write_chunk(file, spec, c);
  }
}

// Checks the file as a Python user reads it, when python3 with h5py is installed.
void check_with_h5py(const std::string& path, const char* dtype, bool string_ids) {
  std::string python;
  for (const char* candidate : {"python3", "/usr/bin/python3"}) {
    if (std::system((std::string(candidate) + " -c 'import h5py' > /dev/null 2>&1").c_str()) == 0) {
      python = candidate;
      break;
    }
  }
  if (python.empty()) {
    WARN("python3 with h5py not found: skipping the h5py check of " << path);
    return;
  }
  const std::string script = source_dir() + "/tests/io/check_activation_file_h5py.py";
  CHECK(std::system((python + " " + script + " " + path + " " + dtype + " " + (string_ids ? "1" : "0")).c_str()) == 0);
}

bool h5dump_header_ok(const std::string& path) {
  return std::system(("h5dump -H " + path + " > " + path + ".dump 2>&1").c_str()) == 0;
}

}  // namespace

TEST_CASE("ranks write disjoint rows into one file that reads back exactly") {
  ensure_mpi();
  const SharedTempDir dir;
  for (const bool string_ids : {false, true}) {
    const auto path = dir + (string_ids ? "/s.h5" : "/i.h5");
    const auto spec = small_spec(string_ids);
    {
      auto file = ActivationFile::create(path, spec, MPI_COMM_WORLD);
      CHECK_FALSE(file.resumed());
      CHECK(file.completed_chunks().empty());
      CHECK(file.token_offsets() == std::vector<int64_t>{0, 3, 4, 8, 9, 14, 23});
      write_my_chunks(file, spec);
      file.finalize();
      CHECK(file.complete());
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (mpi_rank() == 0) {
      CHECK(count_mismatches(path, spec, all_chunks()) == 0);
      CHECK(read_sample_ids(path) == spec.sample_ids);
      const auto info = inspect_activation_file(path);
      CHECK(info.complete);
      CHECK(info.num_samples == 7);
      CHECK(info.hidden_size == 5);
      CHECK(info.fingerprint == "fp-1");
      CHECK(info.string_attributes.at("model") == "tiny");
      CHECK(info.string_attributes.at("config") == "job: extract\n");
      CHECK(info.string_attributes.count("creation_time") == 1);
      CHECK(info.string_attributes.at("gpujob_version") == GPUJOB_VERSION);
      REQUIRE(info.datasets.size() == 3);
      CHECK(info.datasets[0] == ActivationDatasetName{0, "all"});
      CHECK(read_activations(path, 0, "all").rows == 25);
      CHECK(read_activations(path, 2, "mean").rows == 7);
      CHECK(h5dump_header_ok(path));
      // The serial phase adds the strings.
      SampleStrings strings;
      for (int i = 0; i < 7; ++i) {
        strings.prompt.push_back("prompt " + std::to_string(i) + " \xc3\xa9");  // UTF-8 survives
        strings.completion.push_back("\\box{" + std::string(1, char('A' + i % 4)) + "}");
        strings.label.push_back(i % 3 - 1);
      }
      write_sample_strings(path, strings);
      write_sample_strings(path, strings);  // a rerun replaces them
      CHECK(read_strings(path, "/samples/prompt") == strings.prompt);
      CHECK(read_strings(path, "/samples/completion") == strings.completion);
      CHECK(read_int64_dataset(path, "/samples/label") == strings.label);
      strings.subject = {"only one"};
      REQUIRE_THROWS_WITH(write_sample_strings(path, strings), Catch::Contains("/samples/subject: 1 values for 7 samples"));
      CHECK(h5dump_header_ok(path));
      check_with_h5py(path, "float32", string_ids);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
}

TEST_CASE("float16 files store half precision and read back as float32") {
  ensure_mpi();
  const SharedTempDir dir;
  const auto path = dir + "/half.h5";
  const auto spec = small_spec(false, ActivationDtype::kFloat16);
  for (const auto& [name, s] : {std::make_pair(path, spec), std::make_pair(dir + "/full.h5", small_spec())}) {
    auto file = ActivationFile::create(name, s, MPI_COMM_WORLD);
    write_my_chunks(file, s);
    file.finalize();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (mpi_rank() == 0) {
    // The expected values are multiples of 1/8 below 256, exact in float16.
    CHECK(count_mismatches(path, spec, all_chunks()) == 0);
    // 2 bytes per value instead of 4.
    const auto storage = [](const std::string& file_path) {
      const hid_t file = H5Fopen(file_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
      const hid_t dataset = H5Dopen2(file, "/activations/layer_0/all", H5P_DEFAULT);
      const hsize_t bytes = H5Dget_storage_size(dataset);
      H5Dclose(dataset);
      H5Fclose(file);
      return bytes;
    };
    CHECK(storage(path) == 25 * 5 * 2);
    CHECK(storage(dir + "/full.h5") == 25 * 5 * 4);
    REQUIRE(h5dump_header_ok(path));
    const auto dump = gpujob::io::read_text_file(path + ".dump");
    CHECK(dump.find("16-bit little-endian floating-point") != std::string::npos);
    check_with_h5py(path, "float16", false);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_CASE("resume finishes the missing chunks; the result equals an uninterrupted run") {
  ensure_mpi();
  const SharedTempDir dir;
  const auto path = dir + "/resume.h5";
  const auto spec = small_spec(true);
  {
    auto file = ActivationFile::create_or_resume(path, spec, MPI_COMM_WORLD);
    CHECK_FALSE(file.resumed());
    // Chunks 0 and 2 finish; chunk 1 is written but never recorded (interrupted).
    if (mpi_rank() == 0) {
      write_chunk(file, spec, 0);
      write_chunk(file, spec, 2);
      write_chunk(file, spec, 1, false);
    }
    file.close();
  }
  // A garbled record (as a file system that splits appends could leave) is skipped, not fatal.
  if (mpi_rank() == 0) std::ofstream(progress_path(path), std::ios::app) << "{\"chunk\": 1, \"fir{\"chunk\"\n";
  MPI_Barrier(MPI_COMM_WORLD);
  {
    auto file = ActivationFile::create_or_resume(path, spec, MPI_COMM_WORLD);
    CHECK(file.resumed());
    CHECK_FALSE(file.complete());
    CHECK(file.completed_chunks() == std::set<int64_t>{0, 2});
    write_my_chunks(file, spec, file.completed_chunks());
    file.finalize();
  }
  {
    auto file = ActivationFile::open_for_resume(path, spec, MPI_COMM_WORLD);
    CHECK(file.complete());
    CHECK(file.completed_chunks() == std::set<int64_t>{0, 1, 2, 3});
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (mpi_rank() == 0) CHECK(count_mismatches(path, spec, all_chunks()) == 0);
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_CASE("a file from another configuration is never appended to") {
  ensure_mpi();
  const SharedTempDir dir;
  const auto path = dir + "/other.h5";
  auto spec = small_spec();
  { ActivationFile::create(path, spec, MPI_COMM_WORLD).close(); }
  auto other = spec;
  other.fingerprint = "fp-2";
  REQUIRE_THROWS_WITH(ActivationFile::open_for_resume(path, other, MPI_COMM_WORLD),
                      Catch::Contains(path + ": written by a different configuration (fingerprint fp-1, this run fp-2)") &&
                          Catch::Contains("write to a new output path, or delete " + path));
  other = spec;
  other.hidden_size = 6;
  REQUIRE_THROWS_WITH(ActivationFile::create_or_resume(path, other, MPI_COMM_WORLD), Catch::Contains("hidden size differs"));
  other = spec;
  other.token_capacity[0] = 4;
  REQUIRE_THROWS_WITH(ActivationFile::open_for_resume(path, other, MPI_COMM_WORLD), Catch::Contains("token offsets differ"));
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_CASE("bad specs and writes are one-line errors") {
  ensure_mpi();
  const SharedTempDir dir;
  const auto path = dir + "/bad.h5";
  auto spec = small_spec();
  spec.datasets.push_back({1, "median"});
  REQUIRE_THROWS_WITH(ActivationFile::create(path, spec, MPI_COMM_WORLD), Catch::Contains("unknown position \"median\""));
  spec = small_spec();
  spec.token_capacity.pop_back();
  REQUIRE_THROWS_WITH(ActivationFile::create(path, spec, MPI_COMM_WORLD), Catch::Contains("token_capacity has 6 entries for 7 samples"));
  spec = small_spec();
  auto file = ActivationFile::create(path, spec, MPI_COMM_WORLD);
  std::vector<float> rows(100, 0.0f);
  REQUIRE_THROWS_WITH(file.write_sample_rows(0, "last", 6, 2, rows.data()),
                      path + ": /activations/layer_0/last: rows [6, 8) outside [0, 7)");
  REQUIRE_THROWS_WITH(file.write_sample_rows(1, "last", 0, 1, rows.data()),
                      path + ": no dataset /activations/layer_1/last in this file's spec");
  REQUIRE_THROWS_WITH(file.write_token_rows(0, 0, 4, rows.data()),
                      path + ": /activations/layer_0/all: sample 0 has 4 tokens but 3 rows were reserved");
  file.close();
  MPI_Barrier(MPI_COMM_WORLD);
  if (mpi_rank() == 0) {
    REQUIRE_THROWS_WITH(read_activations(path, 7, "last"), Catch::StartsWith(path + ": no dataset /activations/layer_7/last: HDF5"));
    REQUIRE_THROWS_WITH(read_activations("/nonexistent.h5", 0, "last"), Catch::StartsWith("/nonexistent.h5: cannot open as HDF5"));
  }
  MPI_Barrier(MPI_COMM_WORLD);
}
