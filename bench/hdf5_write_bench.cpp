// Parallel HDF5 write rate of the extractor output (every rank writing its chunks' rows straight
// into one activation file, as extractor ranks do) against one process writing the same bytes
// sequentially into a plain file. Both include making the data durable (fdatasync), as the
// activation file does for every chunk. For BENCHMARKS.md.
//
//   mpirun -np P hdf5_write_bench OUT_DIR [--samples 512] [--hidden 4096] [--tokens 256]
//          [--position all|last] [--layers 1] [--chunk 32] [--dtype float32|float16]
//
// Chunks go to ranks round-robin. Prints one line per method with GB/s of activation data.
#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "gpujob/io/activation_file.hpp"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gpujob;
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const bench::Args args(argc, argv,
                         {{"samples", "512"}, {"hidden", "4096"}, {"tokens", "256"}, {"position", "all"},
                          {"layers", "1"}, {"chunk", "32"}, {"dtype", "float32"}},
                         "usage: mpirun -np P hdf5_write_bench OUT_DIR [--samples N] [--hidden H] [--tokens T] "
                         "[--position all|last] [--layers L] [--chunk C] [--dtype float32|float16]");
  const std::string dir = args.model_dir();
  const int64_t samples = args.integer("samples"), hidden = args.integer("hidden"), tokens = args.integer("tokens");
  const int64_t layers = args.integer("layers"), chunk = args.integer("chunk");
  const std::string position = args.text("position");
  const bool all = position == "all";
  if (rank == 0) std::filesystem::create_directories(dir);
  MPI_Barrier(MPI_COMM_WORLD);

  io::ActivationFileSpec spec;
  spec.hidden_size = hidden;
  for (int64_t i = 0; i < samples; ++i) spec.sample_ids.push_back(std::to_string(i));
  for (int64_t l = 0; l < layers; ++l) spec.datasets.push_back({static_cast<int>(l), position});
  if (all) spec.token_capacity.assign(samples, tokens);
  spec.dtype = args.text("dtype") == "float16" ? io::ActivationDtype::kFloat16 : io::ActivationDtype::kFloat32;
  spec.fingerprint = "hdf5_write_bench";

  // Rows of one sample, the same values for every write (the rate does not depend on them).
  const int64_t rows_per_sample = all ? tokens : 1;
  std::vector<float> rows(static_cast<size_t>(rows_per_sample * hidden));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i % 1000) * 1e-3f;
  std::vector<float> chunk_rows(static_cast<size_t>(chunk * hidden), 0.5f);  // pooled rows of one chunk
  const int64_t stored_bytes = (spec.dtype == io::ActivationDtype::kFloat16 ? 2 : 4);
  const double total_bytes = static_cast<double>(samples * rows_per_sample * hidden * layers * stored_bytes);

  const std::string h5 = dir + "/bench.h5";
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = now_s();
  {
    io::ActivationFile file = io::ActivationFile::create(h5, spec, MPI_COMM_WORLD);
    const int64_t n_chunks = (samples + chunk - 1) / chunk;
    std::vector<int64_t> counts(static_cast<size_t>(chunk), rows_per_sample);
    for (int64_t c = rank; c < n_chunks; c += size) {
      const int64_t first = c * chunk, count = std::min(chunk, samples - first);
      // As the extractor writes: `all` rows per sample at its token offset, pooled rows per chunk.
      for (int64_t l = 0; l < layers; ++l) {
        if (all) {
          for (int64_t s = first; s < first + count; ++s) file.write_token_rows(static_cast<int>(l), s, tokens, rows.data());
        } else {
          file.write_sample_rows(static_cast<int>(l), position, first, count, chunk_rows.data());
        }
      }
      file.write_num_tokens(first, count, counts.data());
      file.mark_chunk_done(c, first, count);
    }
    file.finalize();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const double parallel = now_s() - t0;

  if (rank == 0) {
    // The same bytes from one process: sequential writes of the same row blocks, then fdatasync.
    const std::string plain = dir + "/bench.bin";
    const double t1 = now_s();
    const int fd = ::open(plain.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) {
      std::perror(plain.c_str());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    const size_t block = rows.size() * static_cast<size_t>(stored_bytes);
    const char* bytes = reinterpret_cast<const char*>(rows.data());
    for (int64_t i = 0; i < samples * layers; ++i) {
      for (size_t done = 0; done < block;) {
        const ssize_t n = ::write(fd, bytes + done, block - done);
        if (n <= 0) {
          std::perror("write");
          MPI_Abort(MPI_COMM_WORLD, 1);
        }
        done += static_cast<size_t>(n);
      }
    }
    ::fdatasync(fd);
    ::close(fd);
    const double sequential = now_s() - t1;
    std::printf("parallel HDF5, %d ranks, %s x %lld layer(s), %lld samples x %lld rows x %lld (%s): %.3f GB in %.2f s = %.2f GB/s\n",
                size, position.c_str(), static_cast<long long>(layers), static_cast<long long>(samples),
                static_cast<long long>(rows_per_sample), static_cast<long long>(hidden), args.text("dtype").c_str(),
                total_bytes / 1e9, parallel, total_bytes / 1e9 / parallel);
    std::printf("sequential write(2), 1 process, same bytes: %.3f GB in %.2f s = %.2f GB/s\n", total_bytes / 1e9,
                sequential, total_bytes / 1e9 / sequential);
    std::filesystem::remove(plain);
    std::filesystem::remove(h5);
    std::filesystem::remove(io::progress_path(h5));
  }
  MPI_Finalize();
  return 0;
}
