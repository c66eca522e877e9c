#pragma once
// `radmm-trace stats` and `radmm-trace simulate`: where the time of a traced
// run went, and what it would be under another placement or network.
//
// Each node is a sequential program of operations taken from its events:
// work (everything between messages: the block updates and the driver's own
// bookkeeping), send (inside transport::send) and receive (wait for a message,
// then take it). The simulator replays these programs with the recorded work
// and send durations; a receive completes at max(ready, arrival) + the node's
// receive cost. Arrivals come from the recorded network (each message's own
// recorded latency) or from a model: latency L plus bytes / B between layers on
// different workers, the recorded latency within one. Layers are placed on P
// workers in contiguous blocks (the coordinator on a host of its own); layers
// sharing a worker share its cores. The critical path is traced back through
// whatever made each operation wait: its own node, its worker's core, or a
// message.
#include "tools/trace_model.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace radmm::tools {

inline constexpr std::size_t block_count = 6;  // protocol::span_block values

struct node_time {
  std::int64_t compute = 0;  // top-level compute spans
  std::int64_t waiting = 0;  // blocked in receive
  std::int64_t sending = 0;  // inside send
  std::int64_t other = 0;    // the rest of the window
  std::array<std::int64_t, block_count> by_block{};
  std::size_t spans = 0, sent = 0, received = 0;
  std::uint64_t bytes_sent = 0;
};

struct critical_path {
  std::int64_t length = 0;
  std::array<std::int64_t, block_count> compute{};  // by block
  std::int64_t other_work = 0, sending = 0, receiving = 0, latency = 0;
  std::int64_t core_wait = 0;  // ready but waiting for a core held by a layer on the same worker
  std::size_t messages = 0;            // message edges on the path
  std::vector<std::int64_t> by_node;   // time on the path per node (work, send, receive)
};

struct sim_options {
  int workers = 0;                      // P; 0: one per layer
  std::optional<double> latency_s;      // L; unset with bandwidth unset: the recorded network
  std::optional<double> bandwidth_Bps;  // B in bytes per second
  int cores = 1;                        // per worker
};

struct sim_result {
  std::int64_t wall = 0;  // the simulated training window (first STEP to last SYNC)
  std::int64_t recorded_wall = 0;
  bool recorded_network = true;
  double latency_s = 0, bandwidth_Bps = 0;  // the model used (bandwidth 0: infinite)
  double estimated_latency_s = 0;           // median recorded latency of awaited messages
  int workers = 0;
  critical_path path;
};

struct run_stats {
  std::int64_t wall = 0;  // training window
  std::int64_t iterations = 0;
  std::vector<node_time> nodes;
  double overlap = 0;  // sum of the layers' compute over wall
  sim_result recorded;  // the recorded run re-simulated: its critical path
};

run_stats compute_stats(const run_model& r);
sim_result simulate(const run_model& r, const sim_options& opt);

std::string format_stats(const run_model& r, const run_stats& s);
std::string format_simulation(const sim_result& s);

// "2.5ms", "40us", "1s" (default unit: seconds); "10Gbit/s", "1.25GB/s",
// "100MB/s" (default unit: bytes per second). Throw std::invalid_argument.
double parse_duration_s(const std::string& text);
double parse_bandwidth_Bps(const std::string& text);

}  // namespace radmm::tools
