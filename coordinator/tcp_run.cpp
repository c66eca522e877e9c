#include "coordinator/tcp_run.hpp"

#include "protocol/tcp.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace radmm::coordinator {
namespace {

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

// Local worker processes of one run; kills and reaps whatever is left on
// destruction. Unlike the shared-memory run, several workers usually exit
// together here (the neighbours of a dead worker see its connection drop), so
// the report prefers the one killed by a signal: the cause, not the echoes.
class local_workers {
 public:
  explicit local_workers(int layers)
      : pids_(static_cast<std::size_t>(layers) + 1, -1), status_(pids_.size(), 0), done_(pids_.size(), false) {}
  ~local_workers() { stop(); }
  local_workers(const local_workers&) = delete;
  local_workers& operator=(const local_workers&) = delete;

  void spawn(int layer, const std::vector<std::string>& argv_words, const std::vector<std::string>& env_words,
             bool search_path) {
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

  int pid(int layer) const { return pids_[static_cast<std::size_t>(layer)]; }

  // Collects every worker that has exited; true when any exited since the run began.
  bool poll() {
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

  // The most telling exit so far, or nothing.
  std::optional<std::string> cause() const {
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

  // Health check between polls: throws process_error when a worker has exited.
  void check() {
    if (poll()) throw process_error(*cause());
  }

  // After a transport failure: a dead worker's connection usually drops
  // before the kernel reports it as exited, so give it a moment.
  std::optional<std::string> wait_for_cause(milliseconds grace) {
    const auto until = clock_type::now() + grace;
    while (!poll() && clock_type::now() < until) std::this_thread::sleep_for(milliseconds(5));
    std::this_thread::sleep_for(milliseconds(20));  // its neighbours exit next: collect them too
    poll();
    return cause();
  }

  // Waits up to `grace` for every worker to exit; false if any had to be killed or failed.
  bool reap(milliseconds grace) {
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

  void stop() noexcept {
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

 private:
  std::vector<pid_t> pids_;
  std::vector<int> status_;
  std::vector<bool> done_;
  std::vector<std::size_t> order_;  // exit order as observed
};

bool is_transport_error(const std::exception& e) {
  return dynamic_cast<const protocol::io_error*>(&e) != nullptr ||
         dynamic_cast<const protocol::timeout_error*>(&e) != nullptr ||
         dynamic_cast<const protocol::protocol_error*>(&e) != nullptr;
}

}  // namespace

run_result train_tcp(const problem& p, const schedule& s, const metrics_callback& on_metrics,
                     const tcp_run_options& opt, const run_control* control) {
  const int N = p.arch.layers;
  protocol::tcp_options topt;
  if (!opt.token_file.empty())
    topt.token = protocol::read_token_file(opt.token_file);
  else if (opt.spawn_workers)
    topt.token = protocol::random_token();
  else
    throw std::invalid_argument("workers started elsewhere need a shared token: give a token file (--token-file)");
  topt.heartbeat_interval = opt.heartbeat;
  topt.peer_timeout = opt.peer_timeout;
  topt.connect_timeout = opt.connect_timeout;
  topt.op_deadline = opt.op_deadline;
  topt.log = opt.log;
  auto say = [&](const std::string& line) {
    if (opt.log)
      opt.log(line);
    else
      std::cerr << line + "\n" << std::flush;
  };

  const protocol::tcp_address listen = protocol::parse_tcp_address(opt.listen);
  protocol::tcp_listener listener(N, listen, topt);
  protocol::tcp_address bound = listener.local_address();
  if (opt.on_listening) opt.on_listening(bound.to_string());

  local_workers workers(N);
  if (opt.spawn_workers) {
    const std::string path = opt.worker_path.empty() ? worker_next_to_self() : opt.worker_path;
    if (!opt.worker_prefix && access(path.c_str(), X_OK) != 0)
      throw process_error("cannot run the worker program " + path + ": " + std::strerror(errno));
    // Spawned workers reach a wildcard listener over loopback.
    protocol::tcp_address target = bound;
    if (target.host == "0.0.0.0") target.host = "127.0.0.1";
    if (target.host == "::") target.host = "::1";
    // The token travels in the environment (not argv, which every user can read).
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e)
      if (std::strncmp(*e, "RADMM_TCP_TOKEN=", 16) != 0) env.emplace_back(*e);
    env.push_back("RADMM_TCP_TOKEN=" + topt.token);
    for (int i = 1; i <= N; ++i) {
      std::vector<std::string> argv;
      if (opt.worker_prefix) argv = opt.worker_prefix(i);
      argv.insert(argv.end(), {path, "--connect", target.to_string(), "--layer", std::to_string(i),
                               "--heartbeat-ms", std::to_string(opt.heartbeat.count()), "--peer-timeout-ms",
                               std::to_string(opt.peer_timeout.count()), "--connect-timeout-ms",
                               std::to_string(opt.connect_timeout.count()), "--deadline-ms",
                               std::to_string(opt.op_deadline.count()), "--die-with-parent"});
      if (!opt.worker_bind.empty()) argv.insert(argv.end(), {"--bind", opt.worker_bind});
      workers.spawn(i, argv, env, static_cast<bool>(opt.worker_prefix));
    }
    if (opt.on_spawn)
      for (int i = 1; i <= N; ++i) opt.on_spawn(i, workers.pid(i));
  } else {
    say("radmm: listening on " + bound.to_string() + " for " + std::to_string(N) +
        " workers (radmm-worker --connect " + bound.to_string() + " --token-file " + opt.token_file +
        " --layer 1.." + std::to_string(N) + "), waiting up to " + std::to_string(opt.connect_timeout.count() / 1000) +
        " s");
  }

  std::unique_ptr<protocol::transport> endpoint;
  auto health = [&] { workers.check(); };
  run_result r;
  try {
    endpoint = listener.accept_workers(opt.connect_timeout, health);
    if (opt.on_address_book) opt.on_address_book(listener.address_book());
    parallel_options popt;
    popt.health_check = health;
    popt.deadline = std::chrono::minutes(30);
    r = train_parallel(p, s, *endpoint, popt, on_metrics, control);
  } catch (const process_error&) {
    workers.stop();
    endpoint.reset();
    throw;
  } catch (const std::exception& e) {
    if (!is_transport_error(e)) {  // e.g. the metrics callback stopped a diverging run
      workers.stop();
      endpoint.reset();
      throw;
    }
    const std::optional<std::string> dead =
        opt.spawn_workers ? workers.wait_for_cause(milliseconds(500)) : std::nullopt;
    workers.stop();
    endpoint.reset();  // remote workers get a goodbye and exit
    if (dead) throw process_error(*dead + " (coordinator saw: " + e.what() + ")");
    throw process_error(e.what());
  }
  endpoint.reset();
  if (!workers.reap(milliseconds(5000))) throw process_error("a worker did not exit cleanly after QUIT");
  return r;
}

}  // namespace radmm::coordinator
