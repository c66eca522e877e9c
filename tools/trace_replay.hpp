#pragma once
// `radmm-trace replay`: re-executes recorded layer machines and compares what
// they send with what was recorded, bit for bit. Needs a trace recorded with
// payloads (trace_incomplete otherwise).
//  - replay_layer: a fresh machine for layer i is fed the messages layer i
//    received, in the order it received them; its output is compared with the
//    messages layer i sent. A recorded ERROR counts as reproduced when the
//    replayed machine fails with the same text.
//  - replay_run: every layer's machine in one process, driven by a
//    deterministic scheduler (one FIFO queue, so per-channel order holds);
//    only the coordinator's recorded INIT, STEP and QUIT messages come from the
//    trace, each released once the coordinator had received what preceded it.
//    Every message every layer sends, the final weights included, is compared.
// The driver's own words are not the machine's: HELLO is not replayed and the
// text of BYE (the driver's statistics) is not compared.
#include "tools/trace_model.hpp"

#include <cstdint>
#include <string>

namespace radmm::tools {

struct replay_result {
  bool identical = true;
  std::string report;  // the first divergence, or a summary
  std::size_t messages_compared = 0;
  std::uint64_t payload_bytes_compared = 0;
};

replay_result replay_layer(const run_model& r, int layer);
replay_result replay_run(const run_model& r);

}  // namespace radmm::tools
