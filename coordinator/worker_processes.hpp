#pragma once
// The local worker processes of one parallel run (shared memory, or TCP with
// spawned workers): fork + exec with PR_SET_PDEATHSIG so no worker outlives
// the coordinator, health checks between polls, and reaping. Every process
// started here is killed and reaped on every exit path (the destructor).
#include "coordinator/process_run.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace radmm::coordinator {

// radmm-worker next to the running executable (both land in build/bin).
std::string worker_next_to_self();
// This process's environment as NAME=VALUE words, for spawn().
std::vector<std::string> current_environment();

class worker_processes {
 public:
  explicit worker_processes(int layers);
  ~worker_processes() { stop(); }
  worker_processes(const worker_processes&) = delete;
  worker_processes& operator=(const worker_processes&) = delete;

  // Starts layer `layer`'s worker: argv_words[0] is the program (looked up in
  // PATH when search_path), env_words its whole environment.
  void spawn(int layer, const std::vector<std::string>& argv_words, const std::vector<std::string>& env_words,
             bool search_path);
  int pid(int layer) const { return pids_[static_cast<std::size_t>(layer)]; }

  // Collects every worker that has exited; true when any exited since the run began.
  bool poll();
  // The most telling exit so far: one killed by a signal is the cause, the
  // others (neighbours that lost it) are echoes.
  std::optional<std::string> cause() const;
  // Health check between polls: throws process_error when a worker has exited.
  void check();
  // After a transport failure: a dead worker's connection usually drops
  // before the kernel reports it as exited, so give it a moment.
  std::optional<std::string> wait_for_cause(std::chrono::milliseconds grace);
  // Waits up to `grace` for every worker to exit; false if any had to be killed or failed.
  bool reap(std::chrono::milliseconds grace);
  void stop() noexcept;

 private:
  std::vector<pid_t> pids_;
  std::vector<int> status_;
  std::vector<bool> done_;
  std::vector<std::size_t> order_;  // exit order as observed
};

}  // namespace radmm::coordinator
