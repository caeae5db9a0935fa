#include "gpujob/cluster/world.hpp"

#include <cstdlib>
#include <vector>

#include "gpujob/cluster/mpi_check.hpp"

namespace gpujob::cluster {

World::World(int* argc, char*** argv) {
  int initialized = 0;
  MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    int provided = 0;
    MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
    owns_mpi_ = true;
    if (provided < MPI_THREAD_MULTIPLE) {
      MPI_Finalize();
      owns_mpi_ = false;
      fail("the MPI library provides thread level ", provided, " but gpujob needs MPI_THREAD_MULTIPLE (",
           MPI_THREAD_MULTIPLE, ") for the coordinator thread on rank 0");
    }
  }
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  // Errors come back as codes (checked by MPI_CHECK) instead of aborting inside MPI.
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  node_.host = host_name();
  node_.nodes = size_;
  node_.node = rank_;
}

World::~World() {
  node_.node_comm = Communicator();
  if (owns_mpi_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
}

void World::detect_node(config::NodeDetection mode) {
  agree([&] { node_ = cluster::detect_node(MPI_COMM_WORLD, mode, [](const char* n) { return std::getenv(n); }); });
}

void World::agree(const std::function<void()>& step) const {
  std::string message;
  try {
    step();
  } catch (const std::exception& e) {
    message = e.what();
    if (message.empty()) message = "unknown error";
  }
  int mine = message.empty() ? size_ : rank_;
  int first = size_;
  MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (first == size_) return;
  int length = static_cast<int>(message.size());
  MPI_CHECK(MPI_Bcast(&length, 1, MPI_INT, first, MPI_COMM_WORLD));
  std::vector<char> text(message.begin(), message.end());
  text.resize(length);
  MPI_CHECK(MPI_Bcast(text.data(), length, MPI_CHAR, first, MPI_COMM_WORLD));
  throw AgreedFailure(std::string(text.begin(), text.end()), first);
}

bool World::any(bool flag) const {
  int mine = flag ? 1 : 0, result = 0;
  MPI_CHECK(MPI_Allreduce(&mine, &result, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  return result != 0;
}

}  // namespace gpujob::cluster
