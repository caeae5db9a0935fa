// MPI for tests below the cluster layer (which has cluster::World): initialised once, on first
// use or at static initialisation, and finalised at exit. One helper for every such test.
#pragma once

#include <mpi.h>

struct MpiSession {
  MpiSession() {
    int done = 0;
    MPI_Initialized(&done);
    if (!done) MPI_Init(nullptr, nullptr);
  }
  ~MpiSession() {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

inline void ensure_mpi() { static MpiSession session; }
inline int mpi_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
inline int mpi_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}
