#pragma once
// TCP transport (Boost.Asio): one process per node, on one host or many.
//
// Topology. The coordinator (node 0) listens; layer i connects to it, and TICK
// and TOCK go directly between neighbours: layer i listens on an ephemeral port
// of its bind address, reports that address when it connects, and once every
// layer has connected the coordinator sends each one the address book, so
// layer i connects to layer i+1. A worker endpoint is returned only when its
// links to the coordinator and to both neighbours are up, so the HELLO that
// the driver sends first means "the mesh is complete" (docs/multi-host.md).
//
// Frames (all integers little-endian), see tcp_frame.hpp:
//   u32 magic "RDMF", u16 protocol_version, u8 kind, u8 zero, u32 header bytes
//   H, u64 matrix bytes B; then H header bytes (for a message: the codec's
//   header with its own magic, version, type, sender, receiver, iteration and
//   every payload's shape), then B bytes of column-major doubles. A frame over
//   max_frame_bytes, a bad magic, version or kind, a header that does not
//   decode or that disagrees with B closes that connection with a logged
//   reason; the process carries on.
//
// Authentication. Before anything else each connection runs an HMAC-SHA256
// challenge-response over the shared token, both ways: the listener sends a
// 32-byte nonce, the connector answers with its own nonce, its node id and
// listen address, and HMAC(token, everything so far); the listener checks it,
// checks that the node id is one it expects and not already connected, and
// proves the token in turn. A wrong token, an unexpected or duplicate node id,
// or any other frame first is rejected with a reason (logged on both sides).
// There is no TLS: the token authenticates peers but traffic is not encrypted
// (use a private network or an ssh/WireGuard tunnel on untrusted ones).
//
// Liveness. Every connection carries a heartbeat frame each heartbeat_interval
// when nothing else was sent; a peer from which no byte arrives for
// peer_timeout is declared lost, as is one whose connection closes without a
// goodbye frame. A send that makes no progress for op_deadline fails. Once a
// peer is lost, receive() returns what had already arrived and then throws
// (timeout_error for silence, io_error otherwise) naming the peer. A goodbye
// from a neighbour is a clean close (it has finished); a goodbye from the
// coordinator ends a worker's run (io_error).
//
// Payloads. The receiver reads each matrix straight from the socket into its
// own Eigen matrix (one copy), so a received view owns its bytes and the
// buffer-reuse rule of transport.hpp holds trivially. Senders write matrices
// with scatter-gather from their own memory (no copy in user space).
//
// Threads. One thread per connection (handshake, then reading), one acceptor
// and one heartbeat thread per endpoint; all are joined and every socket closed
// when the endpoint (or listener) is destroyed.
#include "protocol/transport.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace radmm::protocol {

struct tcp_options {
  // The shared secret; must not be empty (read_token_file).
  std::string token;
  std::chrono::milliseconds heartbeat_interval{1000};
  // A peer silent (not even heartbeats) for this long is lost.
  std::chrono::milliseconds peer_timeout{10000};
  // Connecting (with retries while refused), the handshake and wiring the
  // neighbour links must finish within this.
  std::chrono::milliseconds connect_timeout{60000};
  // A send that makes no progress for this long fails (timeout_error).
  std::chrono::milliseconds op_deadline{30000};
  // Largest frame accepted (header plus matrix bytes).
  std::uint64_t max_frame_bytes = std::uint64_t{1} << 30;
  // Where reasons for closed or rejected connections go; empty: stderr.
  std::function<void(const std::string&)> log;
};

// Reads a token file: its bytes, with one trailing newline (\n or \r\n)
// removed. Throws io_error when it cannot be read and std::invalid_argument
// when it is empty.
std::string read_token_file(const std::string& path);

// A fresh random token (64 hex digits, from OpenSSL's RAND_bytes).
std::string random_token();

// "HOST:PORT" or "[V6ADDR]:PORT"; throws std::invalid_argument naming the text.
struct tcp_address {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
};
tcp_address parse_tcp_address(const std::string& text);

// The IP address to bind for `what`: an IP literal as is, "" or "*" as
// 0.0.0.0, else the first IPv4 address of the network interface of that name
// (e.g. "eth1", "ib0"); otherwise the text is returned unchanged for DNS.
std::string resolve_bind_host(const std::string& what);

// Coordinator side. Listens at once (so a port 0 is resolved before workers
// start) and accepts layers 1..layers.
class tcp_listener {
 public:
  tcp_listener(int layers, const tcp_address& listen, const tcp_options& opt);
  ~tcp_listener();
  tcp_listener(const tcp_listener&) = delete;
  tcp_listener& operator=(const tcp_listener&) = delete;

  // The address actually bound (port filled in).
  tcp_address local_address() const;

  // Waits until every layer has connected and authenticated, sends the
  // address book, and returns the coordinator's endpoint (which keeps the
  // connections; the listener keeps rejecting late or duplicate connections
  // until the endpoint is gone). `between_polls` runs every `poll` while
  // waiting and may throw (a spawned worker died). Throws timeout_error naming
  // the missing layers after `deadline`. Call once.
  std::unique_ptr<transport> accept_workers(std::chrono::milliseconds deadline,
                                            const std::function<void()>& between_polls = {},
                                            std::chrono::milliseconds poll = std::chrono::milliseconds(50));

  // Layers connected and authenticated so far, ascending.
  std::vector<int> connected() const;

  // Reasons for every connection the listener refused or closed so far.
  std::vector<std::string> rejections() const;

  // The address book sent to the workers ("layers N", then "i host port"
  // lines); empty before accept_workers has succeeded.
  std::string address_book() const;

  struct node;  // shared with the endpoint

 private:
  std::shared_ptr<node> node_;
};

// Worker side, layer `layer` (the number of layers comes with the address
// book). Listens on `bind_host` (resolve_bind_host; "" = every address,
// advertising the one that reaches the coordinator), connects to the
// coordinator, waits for the address book and the neighbour links. Throws
// io_error when refused (the reason is in the text), timeout_error when the
// coordinator does not answer within connect_timeout.
std::unique_ptr<transport> connect_tcp_worker(const tcp_address& coordinator, node_id layer,
                                              const std::string& bind_host, const tcp_options& opt);

}  // namespace radmm::protocol
