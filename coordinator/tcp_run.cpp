#include "coordinator/tcp_run.hpp"

#include "coordinator/worker_processes.hpp"

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

  worker_processes workers(N);
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
