#pragma once
// The `radmm` command line: train, eval, predict. Returns the process exit code
// (0 ok, 1 runtime failure, 2 bad input or usage, 3 a worker failed, 4 diverged).
namespace radmm::coordinator {
int run_cli(int argc, char** argv);
}
