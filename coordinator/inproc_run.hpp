#pragma once
// `--parallel inproc`: the coordinator and one thread per layer over the
// in-process transport. Same machines, same driver loop, same coordinator
// logic as the multi-process run; used by tests for the serial-equals-parallel
// check and by users who want the pipeline without processes.
#include "coordinator/training.hpp"

#include <cstdint>
#include <string>

namespace radmm::coordinator {

struct inproc_options {
  // Fault injection for tests: each message is delayed with this probability
  // by up to max_delay (in the sending thread), seeded.
  double delay_probability = 0;
  std::chrono::microseconds max_delay{0};
  std::uint64_t delay_seed = 1;
  // --trace FILE: record every message and compute span (protocol/trace.hpp).
  std::string trace;
  bool trace_payloads = false;  // --trace-payloads: with matrix bytes, for replay
};

run_result train_inproc(const problem& p, const schedule& s, const metrics_callback& on_metrics,
                        const inproc_options& opt = {}, const run_control* control = nullptr);

}  // namespace radmm::coordinator
