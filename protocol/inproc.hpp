#pragma once
// In-process transport: one inbox per node, threads as nodes. Matrices cross as
// the same shared pointer, so a received view's data() is the sender's buffer
// (zero copies); the buffer-reuse rule of transport.hpp still applies, since a
// sender that overwrote a matrix it had shared would change what the receiver
// sees. Headers are encoded once per send only to enforce max_message_bytes, so
// a message too large for shared memory fails here too.
#include "protocol/transport.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

#include "core/rng.hpp"

namespace radmm::protocol {

class inproc_network {
 public:
  // nodes = layers + 1 (the coordinator is node 0).
  explicit inproc_network(int nodes);
  ~inproc_network();
  inproc_network(const inproc_network&) = delete;
  inproc_network& operator=(const inproc_network&) = delete;

  int nodes() const;

  // The endpoint of `self`. One live endpoint per node (std::invalid_argument
  // otherwise, and for an id outside 0..nodes-1); it may outlive the network
  // object. Sending to a node outside the network is a protocol_error; send
  // never blocks (inboxes are unbounded).
  std::unique_ptr<transport> endpoint(node_id self);

  // Ends the network: waiting receivers wake, and every later send and receive
  // throws io_error, so a failed test tears its threads down instead of hanging.
  void close();

  struct state;  // shared with the endpoints

 private:
  std::shared_ptr<state> state_;
};

// Wraps a transport and, for a fraction `probability` of sends, sleeps a
// uniformly random 0..max_delay before passing the message on. The sleep is in
// the sending thread, so per (sender, receiver) FIFO order is preserved while
// the interleaving across senders changes: the shape of timing that the PRU
// protocol must not depend on. Deterministic given the seed (core::rng).
class delaying_transport final : public transport {
 public:
  // Owning and non-owning forms.
  delaying_transport(std::unique_ptr<transport> inner, double probability,
                     std::chrono::microseconds max_delay, std::uint64_t seed);
  delaying_transport(transport& inner, double probability, std::chrono::microseconds max_delay,
                     std::uint64_t seed);

  node_id self() const override { return inner_->self(); }
  void send(const message& m) override;
  std::optional<message> receive(std::chrono::milliseconds wait) override {
    return inner_->receive(wait);
  }
  transport_counters counters() const override { return inner_->counters(); }

 private:
  std::unique_ptr<transport> owned_;
  transport* inner_;
  double probability_;
  std::chrono::microseconds max_delay_;
  std::mutex mutex_;  // guards rng_: an endpoint may be shared by threads
  core::rng rng_;
};

}  // namespace radmm::protocol
