#pragma once
// A transport delivers messages between the nodes of one run (coordinator = 0,
// layers 1..N). Each process (or thread) holds one `transport` endpoint: its own
// inbox plus the ability to send to any peer. Implementations: in-process
// (threads), shared memory (Boost.Interprocess), TCP (Boost.Asio). Layer
// machines never see a transport; a driver loop moves messages between the two.
//
// Buffer-reuse rule (why a sender may overwrite a payload slot): a payload sent
// from A to B in slot (A, B, type, kind) stays valid until A sends the next
// payload in the same slot. The PRU protocol only lets A produce that next
// payload after B has sent A (directly or through a chain) a message that B
// sends after its last use of the previous one, so a single slot per
// (sender, receiver, type, kind) is safe. Receivers must drop a view once they
// have sent the message that releases it. Shared-memory slots carry a
// generation number; a view whose generation no longer matches is an error.
#include "protocol/message.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace radmm::protocol {

// Errors at the transport edge (see docs/errors.md).
struct io_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct protocol_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct timeout_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Traffic one endpoint has handled, for benchmarks and logs.
struct transport_counters {
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t header_bytes_sent = 0;     // encoded headers (in process: encoded only to check the limit)
  std::uint64_t payload_bytes_copied = 0;  // matrix bytes copied by send (in process: none)
};

class transport {
 public:
  virtual ~transport() = default;
  virtual node_id self() const = 0;
  // Delivers `m` to m.receiver. Throws timeout_error when the peer's inbox stays
  // full past the deadline, io_error or protocol_error otherwise.
  virtual void send(const message& m) = 0;
  // Next message for this endpoint, or nullopt when none arrives within `wait`.
  virtual std::optional<message> receive(std::chrono::milliseconds wait) = 0;
  // Totals since the endpoint was opened; a transport that keeps none returns zeros.
  virtual transport_counters counters() const { return {}; }
};

}  // namespace radmm::protocol
