// MPI_CHECK: every MPI return code is checked and turned into a gpujob::Error naming the call.
#pragma once

#include <mpi.h>

#include <string>

#include "gpujob/util/error.hpp"

namespace gpujob::cluster {
namespace detail {
[[noreturn]] void mpi_failed(int code, const char* call, const char* file, int line);
}

// Throws a gpujob::Error "<what>: <MPI error string> (rank R)" when `code` is not MPI_SUCCESS: for
// calls whose failure is better named by what they were doing than by the call's text.
void check_mpi(int code, const char* what);

}  // namespace gpujob::cluster

#define MPI_CHECK(call)                                                                      \
  do {                                                                                       \
    const int mpi_check_code_ = (call);                                                      \
    if (mpi_check_code_ != MPI_SUCCESS)                                                      \
      ::gpujob::cluster::detail::mpi_failed(mpi_check_code_, #call, __FILE__, __LINE__);     \
  } while (0)
