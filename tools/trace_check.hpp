#pragma once
// `radmm-trace check`: the protocol invariants of a traced run.
//  - versions: every stream and every message speaks this build's protocol;
//  - pairing: every message a node received was sent to it, with the same
//    header (the transports are FIFO per channel);
//  - roles: only the coordinator sends INIT, STEP, QUIT; only TICKs go to the
//    next layer and TOCKs to the previous one; workers answer the coordinator;
//  - TICK/TOCK: the k-th TICK (TOCK) a layer consumes comes from layer i-1
//    (i+1) for exactly the iteration the STEPs it was given call for;
//  - STEP/SYNC: each STEP is closed by every worker's SYNC (same batch, the
//    STEP's last iteration) after that worker consumed the STEP's TICKs and
//    TOCKs, and the coordinator starts the next STEP only after all of them;
//  - QUIT: the run ends with QUIT to every worker; nothing is sent after it
//    but one BYE per worker, nothing is received by a worker after it, and
//    in a complete trace every message sent was received.
#include "tools/trace_model.hpp"

#include <optional>
#include <string>
#include <vector>

namespace radmm::tools {

struct violation {
  std::size_t seq = 0;  // the message at fault (messages.size(): the end of the trace)
  std::string what;
};

// Every violation found, ordered by seq (the first is the one to report).
std::vector<violation> check_trace(const run_model& r);

}  // namespace radmm::tools
