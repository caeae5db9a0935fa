// Crash report: a rank that dies of a fatal signal says which rank, which signal and where.
#pragma once

namespace gpujob {

// Installs handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT that write one line
// "gpujob rank R: fatal signal SIGSEGV (Segmentation fault)" and the native stack to stderr, then
// re-raise the signal with its default action (so the exit status and core dumps stay as they
// were). Under mpirun or srun the other ranks are then stopped by the launcher. rank < 0 for a
// single-process run. Calling it again updates the rank.
void install_crash_report(int rank);

}  // namespace gpujob
