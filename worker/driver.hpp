#pragma once
// The driver loop that runs a layer machine over a transport: announce with
// HELLO, then receive -> handle -> send until the machine has answered QUIT.
// The same loop runs a machine in a thread of the in-process network and in a
// `radmm-worker` process over shared memory or TCP.
#include "protocol/transport.hpp"
#include "worker/layer_machine.hpp"

#include <chrono>
#include <cstdint>
#include <string>
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

// Where a worker's time went, reported to the coordinator in the text of its
// BYE ("compute_ns=... wait_ns=... send_ns=... block_bytes=... peak_rss_kb=...").
struct driver_stats {
  std::int64_t compute_ns = 0;  // inside layer_machine::handle (the block updates)
  std::int64_t wait_ns = 0;     // blocked in receive
  std::int64_t send_ns = 0;     // inside transport::send (copies into shared memory, syscalls)
  std::int64_t messages_in = 0, messages_out = 0;
  std::size_t block_bytes = 0;  // the block variables held at the end (layer_machine::block_bytes)
  long peak_rss_kb = 0;         // getrusage of the whole process (meaningful per process)
  std::string to_text() const;
  static driver_stats from_text(const std::string& text);  // missing keys stay 0
};

// Runs until the machine finishes. On any error it tries to tell the
// coordinator with an ERROR message, then rethrows.
driver_stats run_machine(protocol::transport& t, layer_machine& machine, const driver_options& opt = {});

}  // namespace radmm::worker
