// gpujob: the command-line entry point. Everything is in the layers; main only dispatches.
#include "jobs/cli.hpp"

int main(int argc, char** argv) { return gpujob::jobs::run_cli(argc, argv); }
