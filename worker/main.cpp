// radmm-worker: one layer of a parallel run. Started by the coordinator (shared
// memory, or TCP on one host) or by a cluster launcher (TCP: ssh, srun, mpirun;
// docs/multi-host.md). Exit codes:
//   0 done, 2 bad arguments, 3 protocol error, 4 transport error, 5 timeout, 6 other.
#include "protocol/shm.hpp"
#include "protocol/trace.hpp"
#include "protocol/tcp.hpp"
#include "worker/driver.hpp"

#include <Eigen/Core>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <sys/prctl.h>
#include <unistd.h>

namespace {

int usage(const std::string& why) {
  std::cerr << "radmm-worker: " << why << "\n"
            << "usage: radmm-worker --run-id ID --layer I --layers N [--deadline-ms MS]\n"
            << "         (shared memory: started by `radmm train --parallel shm`)\n"
            << "       radmm-worker --connect HOST:PORT --token-file FILE [--layer I] [--bind ADDR|IFACE]\n"
            << "         [--heartbeat-ms MS] [--peer-timeout-ms MS] [--connect-timeout-ms MS] [--deadline-ms MS]\n"
            << "         [--die-with-parent]\n"
            << "         (TCP: without --layer the layer is SLURM_PROCID, OMPI_COMM_WORLD_RANK or PMI_RANK plus 1;\n"
            << "          without --token-file the token is read from the environment variable RADMM_TCP_TOKEN)\n";
  return 2;
}

long parse_long(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0') throw std::invalid_argument(flag + " needs an integer, got '" + value + "'");
  return v;
}

// The layer a cluster launcher gave this process: its rank plus 1 (rank 0 is
// layer 1; the coordinator runs elsewhere). 0 when no launcher variable is set.
long layer_from_launcher() {
  for (const char* var : {"SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"})
    if (const char* v = std::getenv(var)) return parse_long(var, v) + 1;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace radmm;
  std::string run_id, connect, token_file, bind, trace_path;
  bool trace_payloads = false;
  long layer = 0, layers = 0, deadline_ms = 30000;
  long heartbeat_ms = 1000, peer_timeout_ms = 10000, connect_timeout_ms = 60000;
  bool die_with_parent = false;
  try {
    for (int a = 1; a < argc; ++a) {
      const std::string flag = argv[a];
      if (flag == "--die-with-parent") {
        die_with_parent = true;
        continue;
      }
      if (a + 1 >= argc) return usage("flag " + flag + " needs a value");
      const std::string value = argv[++a];
      if (flag == "--run-id") run_id = value;
      else if (flag == "--layer") layer = parse_long(flag, value);
      else if (flag == "--layers") layers = parse_long(flag, value);
      else if (flag == "--deadline-ms") deadline_ms = parse_long(flag, value);
      else if (flag == "--connect") connect = value;
      else if (flag == "--token-file") token_file = value;
      else if (flag == "--bind") bind = value;
      else if (flag == "--trace") trace_path = value;
      else if (flag == "--trace-payloads") trace_payloads = parse_long(flag, value) != 0;
      else if (flag == "--heartbeat-ms") heartbeat_ms = parse_long(flag, value);
      else if (flag == "--peer-timeout-ms") peer_timeout_ms = parse_long(flag, value);
      else if (flag == "--connect-timeout-ms") connect_timeout_ms = parse_long(flag, value);
      else return usage("unknown flag " + flag);
    }
    if (!connect.empty() && layer == 0) layer = layer_from_launcher();
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  const bool tcp = !connect.empty();
  if (tcp) {
    if (!run_id.empty()) return usage("--connect (TCP) and --run-id (shared memory) exclude each other");
    if (layer < 1) return usage("--connect needs --layer I (1..N) or a launcher rank (SLURM_PROCID, ...)");
    if (deadline_ms < 1 || heartbeat_ms < 1 || peer_timeout_ms <= heartbeat_ms || connect_timeout_ms < 1)
      return usage("timeouts must be positive and --peer-timeout-ms must exceed --heartbeat-ms");
  } else if (run_id.empty() || layers < 2 || layer < 1 || layer > layers || deadline_ms < 1) {
    return usage("--run-id, --layer (1..N) and --layers (N >= 2) are required");
  }

  // Die with the coordinator (shared memory: it is always the parent; TCP:
  // when it spawned us); and each worker computes on one thread (the
  // parallelism is across layers), which also makes results reproducible.
  if (!tcp || die_with_parent) prctl(PR_SET_PDEATHSIG, SIGKILL);
  const pid_t parent = getppid();
  Eigen::setNbThreads(1);
  try {
    // This worker's part of the run's trace (the coordinator merges the parts).
    std::shared_ptr<protocol::trace_writer> trace;
    if (!trace_path.empty())
      trace = std::make_shared<protocol::trace_writer>(
          protocol::trace_part_path(trace_path, static_cast<protocol::node_id>(layer)),
          protocol::trace_options{trace_payloads, static_cast<std::int32_t>(layer), static_cast<std::int32_t>(layers),
                                  "radmm-worker"});
    std::unique_ptr<protocol::transport> t;
    if (tcp) {
      protocol::tcp_options topt;
      if (!token_file.empty()) {
        try {
          topt.token = protocol::read_token_file(token_file);
        } catch (const std::exception& e) {
          return usage(std::string("--token-file: ") + e.what());
        }
      } else if (const char* env = std::getenv("RADMM_TCP_TOKEN")) {
        topt.token = env;
      }
      if (topt.token.empty()) return usage("--connect needs --token-file FILE (or RADMM_TCP_TOKEN)");
      topt.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
      topt.peer_timeout = std::chrono::milliseconds(peer_timeout_ms);
      topt.connect_timeout = std::chrono::milliseconds(connect_timeout_ms);
      topt.op_deadline = std::chrono::milliseconds(deadline_ms);
      protocol::tcp_address where;
      try {
        where = protocol::parse_tcp_address(connect);
      } catch (const std::invalid_argument& e) {
        return usage(std::string("--connect: ") + e.what());
      }
      t = protocol::connect_tcp_worker(where, static_cast<protocol::node_id>(layer), bind, topt);
    } else {
      t = protocol::open_shm_endpoint(run_id, static_cast<protocol::node_id>(layer), static_cast<int>(layers),
                                      std::chrono::milliseconds(deadline_ms));
    }
    t = protocol::record_if(trace, std::move(t));
    worker::layer_machine machine(static_cast<protocol::node_id>(layer));
    if (trace) machine.set_span_observer(trace->span_observer(machine.self(), [&machine] { return machine.iteration(); }));
    worker::driver_options opt;
    if (!tcp || die_with_parent) opt.still_wanted = [parent] { return getppid() == parent; };
    worker::run_machine(*t, machine, opt);
    if (trace) trace->close();
    return 0;
  } catch (const protocol::protocol_error& e) {
    std::cerr << "radmm-worker layer " << layer << ": protocol error: " << e.what() << "\n";
    return 3;
  } catch (const protocol::timeout_error& e) {
    std::cerr << "radmm-worker layer " << layer << ": timeout: " << e.what() << "\n";
    return 5;
  } catch (const protocol::io_error& e) {
    std::cerr << "radmm-worker layer " << layer << ": transport error: " << e.what() << "\n";
    return 4;
  } catch (const std::exception& e) {
    std::cerr << "radmm-worker layer " << layer << ": " << e.what() << "\n";
    return 6;
  }
}
