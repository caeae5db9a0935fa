// Stop signals: SIGTERM and SIGUSR1 (Slurm's warning before the time limit) ask the run to stop cleanly.
#pragma once

namespace gpujob::cluster {

// Exit status of a run stopped by a signal after recording its progress: rerunning the same
// command (or `scontrol requeue`) continues where it stopped. 75 is EX_TEMPFAIL.
inline constexpr int kExitStopped = 75;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitConfigError = 2;

// Installs handlers for SIGTERM and SIGUSR1 that only set a flag (async-signal-safe).
void install_stop_handlers();
bool stop_requested();
// The signal that asked to stop (0 when none).
int stop_signal_number();
// For tests: behave as if a stop signal had arrived.
void request_stop();

}  // namespace gpujob::cluster
