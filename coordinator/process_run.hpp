#pragma once
// `--parallel shm`: one `radmm-worker` process per layer over the shared-memory
// transport. The coordinator creates every shared-memory object (under a fresh
// run id), spawns the workers, drives the protocol, reaps every child and
// removes every object on every exit path. A worker that dies is noticed
// within one poll interval: the others are stopped, the layer and the cause
// are named, and the run fails with process_error.
#include "coordinator/training.hpp"

#include <stdexcept>
#include <string>

namespace radmm::coordinator {

struct process_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct process_options {
  std::string worker_path;  // empty: radmm-worker next to this executable
  std::chrono::milliseconds op_deadline{std::chrono::seconds(30)};
  // Observer for tests: called with each worker's pid once all are started.
  std::function<void(int layer, int pid)> on_spawn;
  // Polled while waiting; true aborts the run at once (a second signal).
  std::function<bool()> abort_now;
  // --trace FILE: each process records its part (FILE.part<node>), merged into FILE at the end.
  std::string trace;
  bool trace_payloads = false;
};

run_result train_processes(const problem& p, const schedule& s, const metrics_callback& on_metrics,
                           const process_options& opt = {}, const run_control* control = nullptr);

// Exit codes of radmm-worker (and what the coordinator reports for them).
namespace worker_exit {
inline constexpr int ok = 0;
inline constexpr int usage = 2;
inline constexpr int protocol = 3;
inline constexpr int io = 4;
inline constexpr int timeout = 5;
inline constexpr int other = 6;
}  // namespace worker_exit
std::string describe_worker_exit(int wait_status);

}  // namespace radmm::coordinator
