#pragma once
// The driver loop that runs a layer machine over a transport: announce with
// HELLO, then receive -> handle -> send until the machine has answered QUIT.
// The same loop runs a machine in a thread of the in-process network and in a
// `radmm-worker` process over shared memory or TCP.
#include "protocol/transport.hpp"
#include "worker/layer_machine.hpp"

#include <chrono>
#include <functional>

namespace radmm::worker {

struct driver_options {
  // How long one receive waits before the loop checks `still_wanted`.
  std::chrono::milliseconds poll{100};
  // Give up (timeout_error) when no message arrives for this long; a run whose
  // peers all died must not leave a worker waiting forever.
  std::chrono::milliseconds idle_limit{std::chrono::minutes(10)};
  // Called between polls; returning false ends the loop with io_error (for
  // example when the coordinator process is gone).
  std::function<bool()> still_wanted;
};

// Runs until the machine finishes. On any error it tries to tell the
// coordinator with an ERROR message, then rethrows.
void run_machine(protocol::transport& t, layer_machine& machine, const driver_options& opt = {});

}  // namespace radmm::worker
