#pragma once
// `--parallel tcp`: one `radmm-worker` per layer over the TCP transport
// (protocol/tcp.hpp), on this host or on many (docs/multi-host.md).
//
// The coordinator listens on `listen`. With spawn_workers (the default) it
// starts one local `radmm-worker --connect ...` per layer, exactly as the
// shared-memory run does, and a worker that dies is noticed at once (its
// connection drops) and reported by its exit status. Without, it waits up to
// connect_timeout for workers that a launcher (ssh, srun, mpirun) started.
// Either way the run is the same train_parallel as every other parallel run,
// so its weights and metrics equal the serial run's bit for bit.
//
// Failures (a worker killed, a connection lost, a peer silent past
// peer_timeout, a worker that never connects): the run stops with
// process_error naming the layer; local workers are killed and reaped, remote
// ones are told goodbye and exit (status 4); every thread is joined and every
// socket closed.
#include "coordinator/process_run.hpp"
#include "coordinator/training.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace radmm::coordinator {

struct tcp_run_options {
  // HOST:PORT to listen on; HOST may be an address, a name or an interface
  // (eth1); port 0 picks a free one. Default: loopback only.
  std::string listen = "127.0.0.1:0";
  // The shared secret's file. Empty: a fresh random token, which only
  // spawned workers can know (so spawn_workers off needs a file).
  std::string token_file;
  bool spawn_workers = true;
  // Bind address or interface for spawned workers' sockets (radmm-worker --bind).
  std::string worker_bind;
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds peer_timeout{10000};
  // How long to wait for every worker to connect.
  std::chrono::milliseconds connect_timeout{60000};
  // A send making no progress for this long fails.
  std::chrono::milliseconds op_deadline{30000};
  std::string worker_path;  // empty: radmm-worker next to this executable
  // Prefix for each spawned worker's command line (e.g. {"ip", "netns", "exec",
  // "ns1"}); its first word is looked up in PATH. Empty: run the worker directly.
  std::function<std::vector<std::string>(int layer)> worker_prefix;
  // Observers: each worker's pid once all are started; the bound address
  // (once listening, before any worker starts).
  std::function<void(int layer, int pid)> on_spawn;
  std::function<void(const std::string& host_port)> on_listening;
  // Observer: the address book sent to the workers (protocol/tcp.hpp).
  std::function<void(const std::string& book)> on_address_book;
  // Transport log lines (refused connections, lost peers); empty: stderr.
  std::function<void(const std::string&)> log;
};


// With `control`, checkpoints work as over shared memory: each worker writes
// its block into the directory the STEP names, so remote workers need that
// path on a shared file system.
run_result train_tcp(const problem& p, const schedule& s, const metrics_callback& on_metrics,
                     const tcp_run_options& opt = {}, const run_control* control = nullptr);

}  // namespace radmm::coordinator
