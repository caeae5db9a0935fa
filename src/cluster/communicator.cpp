#include "gpujob/cluster/communicator.hpp"

#include "gpujob/cluster/mpi_check.hpp"

namespace gpujob::cluster {

namespace {
std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}
}  // namespace

namespace detail {
void mpi_failed(int code, const char* call, const char* file, int line) {
  fail(call, " failed at ", file, ":", line, ": ", mpi_error_text(code));
}
}  // namespace detail

void check_mpi(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  int world_rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  fail(what, ": ", mpi_error_text(code), " (rank ", world_rank, ")");
}

Communicator::~Communicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (comm_ != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm_);  // nothing to do on failure in a destructor
}

Communicator& Communicator::operator=(Communicator&& other) noexcept {
  if (this != &other) {
    Communicator old(comm_);
    comm_ = other.release();
  }
  return *this;
}

int Communicator::rank() const {
  int r = 0;
  MPI_CHECK(MPI_Comm_rank(comm_, &r));
  return r;
}

int Communicator::size() const {
  int s = 0;
  MPI_CHECK(MPI_Comm_size(comm_, &s));
  return s;
}

Communicator Communicator::duplicate(MPI_Comm comm) {
  MPI_Comm out = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_dup(comm, &out));
  return Communicator(out);
}

Communicator Communicator::split(MPI_Comm comm, int color, int key) {
  MPI_Comm out = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(comm, color < 0 ? MPI_UNDEFINED : color, key, &out));
  return Communicator(out);
}

}  // namespace gpujob::cluster
