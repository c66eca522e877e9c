#include "coordinator/worker_processes.hpp"

#include <csignal>
#include <cstring>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace radmm::coordinator {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string worker_next_to_self() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "radmm-worker";
  std::string self(buf, static_cast<std::size_t>(n));
  const auto slash = self.rfind('/');
  return (slash == std::string::npos ? std::string() : self.substr(0, slash + 1)) + "radmm-worker";
}

std::vector<std::string> current_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  return env;
}

worker_processes::worker_processes(int layers)
    : pids_(static_cast<std::size_t>(layers) + 1, -1), status_(pids_.size(), 0), done_(pids_.size(), false) {}

void worker_processes::spawn(int layer, const std::vector<std::string>& argv_words,
                             const std::vector<std::string>& env_words, bool search_path) {
  std::vector<char*> argv, envp;
  for (const auto& a : argv_words) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env_words) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw process_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    // In the child: die with the coordinator (no orphans), then exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (search_path)
      execvpe(argv[0], argv.data(), envp.data());
    else
      execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  pids_[static_cast<std::size_t>(layer)] = pid;
}

bool worker_processes::poll() {
  bool any = false;
  for (std::size_t i = 1; i < pids_.size(); ++i) {
    if (pids_[i] <= 0) continue;
    if (!done_[i]) {
      int status = 0;
      if (waitpid(pids_[i], &status, WNOHANG) == pids_[i]) {
        done_[i] = true;
        status_[i] = status;
        order_.push_back(i);
      }
    }
    any = any || done_[i];
  }
  return any;
}

std::optional<std::string> worker_processes::cause() const {
  if (order_.empty()) return std::nullopt;
  std::size_t pick = order_.front();
  for (std::size_t i : order_)
    if (WIFSIGNALED(status_[i])) {
      pick = i;
      break;
    }
  return "layer " + std::to_string(pick) + " worker (pid " + std::to_string(pids_[pick]) + ") " +
         describe_worker_exit(status_[pick]);
}

void worker_processes::check() {
  if (poll()) throw process_error(*cause());
}

std::optional<std::string> worker_processes::wait_for_cause(milliseconds grace) {
  const auto until = clock_type::now() + grace;
  while (!poll() && clock_type::now() < until) std::this_thread::sleep_for(milliseconds(5));
  std::this_thread::sleep_for(milliseconds(20));  // its neighbours exit next: collect them too
  poll();
  return cause();
}

bool worker_processes::reap(milliseconds grace) {
  const auto until = clock_type::now() + grace;
  for (;;) {
    poll();
    bool all = true;
    for (std::size_t i = 1; i < pids_.size(); ++i) all = all && (pids_[i] <= 0 || done_[i]);
    if (all || clock_type::now() > until) break;
    std::this_thread::sleep_for(milliseconds(2));
  }
  bool clean = true;
  for (std::size_t i = 1; i < pids_.size(); ++i)
    if (pids_[i] > 0) clean = clean && done_[i] && WIFEXITED(status_[i]) && WEXITSTATUS(status_[i]) == 0;
  stop();
  return clean;
}

void worker_processes::stop() noexcept {
  for (std::size_t i = 1; i < pids_.size(); ++i)
    if (pids_[i] > 0 && !done_[i]) kill(pids_[i], SIGKILL);
  for (std::size_t i = 1; i < pids_.size(); ++i)
    if (pids_[i] > 0 && !done_[i]) {
      int status = 0;
      waitpid(pids_[i], &status, 0);
      done_[i] = true;
      status_[i] = status;
    }
}

}  // namespace radmm::coordinator
