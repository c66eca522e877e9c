// radmm-worker: one layer of a parallel run. Started by the coordinator (shared
// memory) or by a cluster launcher (TCP, later). Exit codes:
//   0 done, 2 bad arguments, 3 protocol error, 4 transport error, 5 timeout, 6 other.
#include "protocol/shm.hpp"
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
            << "(started by `radmm train --parallel shm`; not meant to be run by hand)\n";
  return 2;
}

long parse_long(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0') throw std::invalid_argument(flag + " needs an integer, got '" + value + "'");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace radmm;
  std::string run_id;
  long layer = 0, layers = 0, deadline_ms = 30000;
  try {
    for (int a = 1; a < argc; ++a) {
      const std::string flag = argv[a];
      if (a + 1 >= argc) return usage("flag " + flag + " needs a value");
      const std::string value = argv[++a];
      if (flag == "--run-id") run_id = value;
      else if (flag == "--layer") layer = parse_long(flag, value);
      else if (flag == "--layers") layers = parse_long(flag, value);
      else if (flag == "--deadline-ms") deadline_ms = parse_long(flag, value);
      else return usage("unknown flag " + flag);
    }
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  if (run_id.empty() || layers < 2 || layer < 1 || layer > layers || deadline_ms < 1)
    return usage("--run-id, --layer (1..N) and --layers (N >= 2) are required");

  // Die with the coordinator; and each worker computes on one thread (the
  // parallelism is across layers), which also makes results reproducible.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  const pid_t parent = getppid();
  Eigen::setNbThreads(1);
  try {
    auto t = protocol::open_shm_endpoint(run_id, static_cast<protocol::node_id>(layer), static_cast<int>(layers),
                                         std::chrono::milliseconds(deadline_ms));
    worker::layer_machine machine(static_cast<protocol::node_id>(layer));
    worker::driver_options opt;
    opt.still_wanted = [parent] { return getppid() == parent; };
    worker::run_machine(*t, machine, opt);
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
