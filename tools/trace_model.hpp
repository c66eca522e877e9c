#pragma once
// A trace as `radmm-trace` sees it: sends paired with receives, every time on
// one clock, and each node's events in the order that node did them. Built once
// from protocol::read_trace_file; check, replay, stats, simulate and export all
// work on it.
#include "protocol/trace.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace radmm::tools {

// The trace lacks what a command needs (payload bytes, compute spans): exit 4.
struct trace_incomplete : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One message: its send record, its receive record, or (normally) both.
struct traced_message {
  std::size_t seq = 0;                 // rank by time: the number tools report
  std::optional<std::size_t> send;     // index into trace_data::sends
  std::optional<std::size_t> receive;  // index into trace_data::receives
  protocol::msg_type type{};
  protocol::node_id sender = 0, receiver = 0;
  std::uint64_t channel_seq = 0;
  std::int64_t iteration = 0, batch = 0;
  // Aligned nanoseconds (0 = the trace's first event); -1 when not recorded.
  std::int64_t t_send_begin = -1, t_send_end = -1, t_wait = -1, t_receive = -1;
};

enum class event_kind { send, receive, span };
// One event of one node; `index` is a message seq (send, receive) or a span index.
struct node_event {
  event_kind kind;
  std::size_t index;
  std::int64_t t_begin, t_end;  // aligned
};

struct aligned_span {
  protocol::node_id node = 0;
  protocol::span_block block{};
  std::uint8_t depth = 0;
  std::int64_t iteration = 0;
  std::int64_t t_begin = 0, t_end = 0;
};

struct run_model {
  protocol::trace_data data;
  int layers = 0;  // N; nodes are 0..N
  bool payloads = false;
  std::vector<traced_message> messages;  // in seq order
  std::vector<std::size_t> message_of_send;                  // send index -> seq
  std::vector<std::size_t> message_of_receive;               // receive index -> seq
  std::vector<aligned_span> spans;
  std::vector<std::vector<node_event>> events;  // per node, in that node's program order
  std::int64_t t_end = 0;                       // last aligned time
  // The training part of the run: the coordinator's first STEP send to its
  // receipt of the last SYNC (or the whole trace when those are missing).
  std::int64_t run_begin = 0, run_end = 0;
  std::vector<std::string> notes;  // alignment and pairing remarks

  int nodes() const { return layers + 1; }
  const protocol::trace_send* send_of(const traced_message& m) const {
    return m.send ? &data.sends[*m.send] : nullptr;
  }
};

run_model build_model(protocol::trace_data data);

// "layer 3" or "coordinator".
std::string node_name(protocol::node_id n);
// "seq 12 (TICK layer 2 -> layer 3, k=5, batch 0)".
std::string describe(const traced_message& m);

}  // namespace radmm::tools
