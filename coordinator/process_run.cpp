#include "coordinator/process_run.hpp"

#include "coordinator/worker_processes.hpp"

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
  worker_processes workers(N);
  const std::string path = opt.worker_path.empty() ? worker_next_to_self() : opt.worker_path;
  if (access(path.c_str(), X_OK) != 0)
    throw process_error("cannot run the worker program " + path + ": " + std::strerror(errno));
  const std::vector<std::string> env = current_environment();
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
    std::vector<std::string> args = {path, "--run-id", run.id(), "--layer", std::to_string(i), "--layers", std::to_string(N),
                                     "--deadline-ms", std::to_string(opt.op_deadline.count())};
    if (trace) args.insert(args.end(), {"--trace", opt.trace, "--trace-payloads", opt.trace_payloads ? "1" : "0"});
    workers.spawn(i, args, env, false);
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
