// Communicator: an owned MPI communicator, freed once (RAII, move-only).
#pragma once

#include <mpi.h>

namespace gpujob::cluster {

class Communicator {
 public:
  Communicator() = default;
  explicit Communicator(MPI_Comm comm) : comm_(comm) {}
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  Communicator(Communicator&& other) noexcept : comm_(other.release()) {}
  Communicator& operator=(Communicator&& other) noexcept;

  MPI_Comm get() const { return comm_; }
  bool valid() const { return comm_ != MPI_COMM_NULL; }
  int rank() const;
  int size() const;
  // Gives up ownership (the caller frees it, or it is deliberately left to MPI_Finalize/MPI_Abort).
  MPI_Comm release() {
    MPI_Comm c = comm_;
    comm_ = MPI_COMM_NULL;
    return c;
  }

  static Communicator duplicate(MPI_Comm comm);
  // MPI_Comm_split: ranks with the same color form one communicator, ordered by key. Ranks passing
  // a negative color (MPI_UNDEFINED) get an invalid Communicator. Collective over `comm`.
  static Communicator split(MPI_Comm comm, int color, int key);

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

}  // namespace gpujob::cluster
