#include "coordinator/process_run.hpp"

#include "protocol/shm.hpp"
#include "protocol/trace.hpp"

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

namespace radmm::coordinator {

std::string describe_worker_exit(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return std::string("killed by signal ") + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  if (WIFEXITED(status)) {
    switch (WEXITSTATUS(status)) {
      case worker_exit::ok: return "exited early with status 0";
      case worker_exit::usage: return "exited with status 2 (bad arguments)";
      case worker_exit::protocol: return "exited with status 3 (protocol error)";
      case worker_exit::io: return "exited with status 4 (transport error)";
      case worker_exit::timeout: return "exited with status 5 (timeout)";
      default: return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
  }
  return "stopped";
}

namespace {

std::string default_worker_path() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "radmm-worker";
  std::string self(buf, static_cast<std::size_t>(n));
  const auto slash = self.rfind('/');
  return (slash == std::string::npos ? std::string() : self.substr(0, slash + 1)) + "radmm-worker";
}

// The workers of one run; kills and reaps whatever is left on destruction.
class worker_group {
 public:
  explicit worker_group(int layers) : pids_(static_cast<std::size_t>(layers) + 1, -1), done_(pids_.size(), false) {}
  ~worker_group() { stop(); }

  void spawn(int layer, const std::string& path, const std::vector<std::string>& args) {
    if (access(path.c_str(), X_OK) != 0)
      throw process_error("cannot run the worker program " + path + ": " + std::strerror(errno));
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(path.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) throw process_error(std::string("fork failed: ") + std::strerror(errno));
    if (pid == 0) {
      // In the child: die with the coordinator (no orphans), then exec.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      execv(path.c_str(), argv.data());
      _exit(127);
    }
    pids_[static_cast<std::size_t>(layer)] = pid;
  }

  // Throws process_error naming the first worker that has exited.
  void check() {
    for (std::size_t i = 1; i < pids_.size(); ++i) {
      if (pids_[i] <= 0 || done_[i]) continue;
      int status = 0;
      const pid_t r = waitpid(pids_[i], &status, WNOHANG);
      if (r == pids_[i]) {
        done_[i] = true;
        throw process_error("layer " + std::to_string(i) + " worker (pid " + std::to_string(pids_[i]) + ") " +
                            describe_worker_exit(status));
      }
    }
  }

  // Waits up to `grace` for every worker to exit by itself; returns false if
  // any had to be killed or exited non-zero.
  bool reap(std::chrono::milliseconds grace) {
    bool clean = true;
    const auto until = std::chrono::steady_clock::now() + grace;
    for (std::size_t i = 1; i < pids_.size(); ++i) {
      if (pids_[i] <= 0 || done_[i]) continue;
      for (;;) {
        int status = 0;
        const pid_t r = waitpid(pids_[i], &status, WNOHANG);
        if (r == pids_[i]) {
          done_[i] = true;
          clean = clean && WIFEXITED(status) && WEXITSTATUS(status) == 0;
          break;
        }
        if (std::chrono::steady_clock::now() > until) {
          kill(pids_[i], SIGKILL);
          waitpid(pids_[i], &status, 0);
          done_[i] = true;
          clean = false;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    return clean;
  }

  void stop() noexcept {
    for (std::size_t i = 1; i < pids_.size(); ++i)
      if (pids_[i] > 0 && !done_[i]) kill(pids_[i], SIGKILL);
    for (std::size_t i = 1; i < pids_.size(); ++i) {
      if (pids_[i] > 0 && !done_[i]) {
        int status = 0;
        waitpid(pids_[i], &status, 0);
        done_[i] = true;
      }
    }
  }

  int pid(int layer) const { return pids_[static_cast<std::size_t>(layer)]; }

 private:
  std::vector<pid_t> pids_;
  std::vector<bool> done_;
};

// Bytes each node writes into its own segment (one slot per payload it sends),
// doubled for the allocator and for slots that grow, plus headroom.
std::vector<std::size_t> segment_estimate(const problem& p) {
  const int N = p.arch.layers;
  const std::size_t n = static_cast<std::size_t>(p.X_train.cols());
  const std::size_t nt = static_cast<std::size_t>(p.X_test.cols());
  const std::size_t d = static_cast<std::size_t>(p.arch.width);
  const std::size_t q = static_cast<std::size_t>(p.arch.output_dim);
  const std::size_t w = sizeof(double);
  std::vector<std::size_t> bytes(static_cast<std::size_t>(N) + 1);
  std::size_t coord = 0;
  for (int i = 1; i <= N; ++i) coord += static_cast<std::size_t>(p.W0[static_cast<std::size_t>(i)].size()) * w + n * w;
  coord += static_cast<std::size_t>(p.X_train.size() + p.X_test.size() + p.Y_train.size() + p.Y_test.size()) * w;
  bytes[0] = 2 * coord + (std::size_t{1} << 20);
  for (int i = 1; i <= N; ++i) {
    const std::size_t rows = i == N ? q : d;
    std::size_t b = static_cast<std::size_t>(p.W0[static_cast<std::size_t>(i)].size()) * w * 2;  // TOCK W, SYNC W
    b += 4 * rows * n * w;            // TOCK V, U, Lambda; TICK V
    b += (d * n + d * nt) * w;        // TICK forward activations
    b += 4096 * w;                    // SYNC metrics
    bytes[static_cast<std::size_t>(i)] = 2 * b + (std::size_t{1} << 20);
  }
  return bytes;
}

}  // namespace

run_result train_processes(const problem& p, const schedule& s, const metrics_callback& on_metrics,
                           const process_options& opt, const run_control* control) {
  const int N = p.arch.layers;
  protocol::shm_run::remove_stale();
  protocol::shm_options sopt;
  sopt.segment_bytes = segment_estimate(p);
  protocol::shm_run run(N, sopt);
  worker_group workers(N);
  const std::string path = opt.worker_path.empty() ? default_worker_path() : opt.worker_path;
  std::shared_ptr<protocol::trace_writer> trace;
  if (!opt.trace.empty())
    trace = std::make_shared<protocol::trace_writer>(protocol::trace_part_path(opt.trace, 0),
                                                     protocol::trace_options{opt.trace_payloads, 0, N, "radmm train --parallel shm"});
  // Joins the parts once every process has closed its own; a failed run keeps what was written.
  auto finish_trace = [&] {
    if (!trace) return;
    trace->close();
    trace.reset();
    for (const std::string& note : protocol::merge_trace_parts(opt.trace, N)) std::cerr << "radmm: trace: " << note << "\n";
  };
  for (int i = 1; i <= N; ++i) {
    std::vector<std::string> args = {"--run-id", run.id(), "--layer", std::to_string(i), "--layers", std::to_string(N),
                                     "--deadline-ms", std::to_string(opt.op_deadline.count())};
    if (trace) args.insert(args.end(), {"--trace", opt.trace, "--trace-payloads", opt.trace_payloads ? "1" : "0"});
    workers.spawn(i, path, args);
  }
  if (opt.on_spawn)
    for (int i = 1; i <= N; ++i) opt.on_spawn(i, workers.pid(i));
  auto endpoint = protocol::record_if(trace, protocol::open_shm_endpoint(run.id(), protocol::coordinator_id, N, opt.op_deadline));
  parallel_options popt;
  popt.health_check = [&] {
    workers.check();
    if (opt.abort_now && opt.abort_now()) throw process_error("interrupted");
  };
  popt.deadline = std::chrono::minutes(30);
  run_result r;
  try {
    r = train_parallel(p, s, *endpoint, popt, on_metrics, control);
  } catch (const process_error&) {
    workers.stop();
    try { finish_trace(); } catch (...) {}
    throw;
  } catch (const std::exception& e) {
    // A protocol or transport failure: if a worker died, that is the cause to report.
    try {
      workers.check();
    } catch (const process_error& dead) {
      workers.stop();
      try { finish_trace(); } catch (...) {}
      throw process_error(std::string(dead.what()) + " (coordinator saw: " + e.what() + ")");
    }
    workers.stop();
    try { finish_trace(); } catch (...) {}
    throw;
  }
  const bool clean = workers.reap(std::chrono::seconds(5));
  finish_trace();
  if (!clean) throw process_error("a worker did not exit cleanly after QUIT");
  return r;
}

}  // namespace radmm::coordinator
