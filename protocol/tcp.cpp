#include "protocol/tcp.hpp"

#include "protocol/codec.hpp"
#include "protocol/tcp_frame.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace radmm::protocol {
namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t nonce_bytes = 32;
constexpr std::size_t mac_bytes = 32;
// Frames before authentication are small; a stranger cannot make us allocate.
constexpr std::uint64_t handshake_frame_limit = 4096;
constexpr milliseconds handshake_limit{10000};
constexpr milliseconds goodbye_linger{1000};
constexpr const char* auth_label = "radmm-tcp-v1 auth";
constexpr const char* accept_label = "radmm-tcp-v1 accept";

std::string peer_name(node_id n) { return n == coordinator_id ? std::string("the coordinator") : "layer " + std::to_string(n); }

std::string ms_text(milliseconds d) { return std::to_string(d.count()) + " ms"; }

// ---- bytes and crypto ----------------------------------------------------

void append_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(static_cast<std::uint8_t>(v >> (8 * i))));
}
std::uint64_t read_le(const std::string& in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(in[at + static_cast<std::size_t>(i)])) << (8 * i);
  return v;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw io_error("tcp: OpenSSL RAND_bytes failed");
  return out;
}

std::string hmac_sha256(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), out, &len) == nullptr ||
      len != mac_bytes)
    throw io_error("tcp: OpenSSL HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool same_mac(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- waiting on a descriptor with a deadline -----------------------------

// True when `fd` is ready for `events` (or has hung up: the next call says
// which) before `deadline`.
bool wait_fd(int fd, short events, clock_type::time_point deadline) {
  for (;;) {
    const auto left = deadline - clock_type::now();
    if (left <= clock_type::duration::zero()) return false;
    const auto ms = std::chrono::ceil<milliseconds>(left).count();
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(ms, INT_MAX)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) throw io_error(std::string("tcp: poll failed: ") + std::strerror(errno));
  }
}

clock_type::time_point earlier(clock_type::time_point a, clock_type::time_point b) { return a < b ? a : b; }
clock_type::time_point after(milliseconds d) {
  // Saturates instead of overflowing for "forever"-like limits.
  const auto now = clock_type::now();
  if (d >= std::chrono::duration_cast<milliseconds>(clock_type::time_point::max() - now)) return clock_type::time_point::max();
  return now + d;
}

// The peer closed the connection where a frame could begin.
struct closed_by_peer : io_error {
  using io_error::io_error;
};

std::string endpoint_text(const tcp::endpoint& e) {
  tcp_address a{e.address().to_string(), e.port()};
  return a.to_string();
}

// ---- one connection ------------------------------------------------------

struct link {
  link(tcp::socket s, std::string remote_text) : sock(std::move(s)), remote(std::move(remote_text)) {}

  tcp::socket sock;
  std::string remote;        // the peer's address, for messages
  std::atomic<node_id> peer{-1};  // once authenticated
  tcp_address advertised;    // the listen address the peer reported
  std::thread thread;
  std::mutex send_mutex;     // one writer at a time; frames never interleave
  std::atomic<std::int64_t> last_send_ns{0};
  std::atomic<bool> done{false};    // its thread has finished
  std::atomic<bool> closed{false};  // no more sends: goodbye seen, or lost

  int fd() { return sock.native_handle(); }
  std::string name() const { return (peer >= 0 ? peer_name(peer) + " at " : std::string()) + remote; }

  // Reads exactly n bytes. Fails with timeout_error when no byte arrives for
  // `idle` or `deadline` passes, closed_by_peer when the peer closed before the
  // first byte of a frame (`boundary`), io_error otherwise.
  void read_exact(void* dst, std::size_t n, milliseconds idle, clock_type::time_point deadline, bool boundary) {
    auto* p = static_cast<char*>(dst);
    std::size_t got = 0;
    auto idle_until = after(idle);
    while (got < n) {
      const ssize_t r = ::recv(fd(), p + got, n - got, 0);
      if (r > 0) {
        got += static_cast<std::size_t>(r);
        idle_until = after(idle);
        continue;
      }
      if (r == 0) {
        if (boundary && got == 0) throw closed_by_peer("connection closed without goodbye");
        throw io_error("truncated frame: connection closed after " + std::to_string(got) + " of " +
                       std::to_string(n) + " bytes");
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        const auto until = earlier(idle_until, deadline);
        if (!wait_fd(fd(), POLLIN, until)) {
          if (until == deadline && deadline < idle_until) throw timeout_error("no complete frame before the deadline");
          throw timeout_error("silent for " + ms_text(idle) + " (heartbeat timeout)");
        }
        continue;
      }
      throw io_error(std::string("receive failed: ") + std::strerror(errno));
    }
  }

  // Writes every byte of `iov` (caller holds send_mutex). timeout_error when
  // the peer takes nothing for `idle`.
  void write_all(std::vector<iovec> iov, milliseconds idle) {
    std::size_t i = 0;
    auto idle_until = after(idle);
    while (i < iov.size()) {
      msghdr mh{};
      mh.msg_iov = &iov[i];
      mh.msg_iovlen = std::min<std::size_t>(iov.size() - i, IOV_MAX);
      const ssize_t r = ::sendmsg(fd(), &mh, MSG_NOSIGNAL);
      if (r >= 0) {
        auto left = static_cast<std::size_t>(r);
        while (i < iov.size() && left >= iov[i].iov_len) left -= iov[i++].iov_len;
        if (left > 0) {
          iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + left;
          iov[i].iov_len -= left;
        }
        idle_until = after(idle);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait_fd(fd(), POLLOUT, idle_until))
          throw timeout_error("send made no progress for " + ms_text(idle) + " (the peer is not reading)");
        continue;
      }
      throw io_error(std::string("send failed: ") + std::strerror(errno));
    }
    last_send_ns.store(clock_type::now().time_since_epoch().count(), std::memory_order_relaxed);
  }

  void send_control(frame_kind kind, const std::string& body, milliseconds idle) {
    std::vector<std::uint8_t> frame = encode_control_frame(kind, body);
    write_all({iovec{frame.data(), frame.size()}}, idle);
  }

  // Reads one control frame (the handshake), refusing anything large.
  std::pair<frame_kind, std::string> read_control(clock_type::time_point deadline) {
    std::uint8_t pre[frame_prefix_size];
    const milliseconds forever = milliseconds::max();
    read_exact(pre, sizeof pre, forever, deadline, true);
    const frame_prefix p = parse_frame_prefix(pre, handshake_frame_limit);
    if (p.kind == frame_kind::message)
      throw protocol_error("a MESSAGE frame before the handshake finished");
    std::string body(p.header_bytes, '\0');
    if (!body.empty()) read_exact(body.data(), body.size(), forever, deadline, false);
    return {p.kind, std::move(body)};
  }

  void shutdown(int how) noexcept { ::shutdown(fd(), how); }
};

void configure(tcp::socket& s) {
  boost::system::error_code ec;
  s.set_option(tcp::no_delay(true), ec);  // latency: every frame is a whole message
  s.non_blocking(true, ec);
  if (ec) throw io_error("tcp: cannot make a socket non-blocking: " + ec.message());
}

}  // namespace

// ---- small public helpers ------------------------------------------------

std::string read_token_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("cannot read token file " + path + ": " + std::strerror(errno));
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!token.empty() && token.back() == '\n') token.pop_back();
  if (!token.empty() && token.back() == '\r') token.pop_back();
  if (token.empty()) throw std::invalid_argument("token file " + path + " is empty");
  return token;
}

std::string random_token() {
  const std::string raw = random_bytes(32);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (char c : raw) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

std::string tcp_address::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

tcp_address parse_tcp_address(const std::string& text) {
  tcp_address a;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw std::invalid_argument("'" + text + "' is not [ADDRESS]:PORT");
    a.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("'" + text + "' is not HOST:PORT");
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (a.host.find(':') != std::string::npos)
      throw std::invalid_argument("'" + text + "': write an IPv6 address as [ADDRESS]:PORT");
  }
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535)
    throw std::invalid_argument("'" + text + "': port '" + port + "' is not 0..65535");
  a.port = static_cast<std::uint16_t>(p);
  return a;
}

std::string resolve_bind_host(const std::string& what) {
  if (what.empty() || what == "*") return "0.0.0.0";
  boost::system::error_code ec;
  asio::ip::make_address(what, ec);
  if (!ec) return what;
  ifaddrs* list = nullptr;
  std::string found;
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* i = list; i != nullptr; i = i->ifa_next)
      if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET && what == i->ifa_name) {
        char buf[INET_ADDRSTRLEN];
        const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
        if (::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf) != nullptr) {
          found = buf;
          break;
        }
      }
    ::freeifaddrs(list);
  }
  return found.empty() ? what : found;
}

// ---- a node: the shared state of one endpoint ----------------------------

struct tcp_listener::node {
  node(node_id self_id, const tcp_options& options) : self(self_id), opt(options) {
    if (opt.token.empty()) throw std::invalid_argument("tcp: the shared token is empty (see --token-file)");
    if (opt.heartbeat_interval.count() <= 0 || opt.peer_timeout.count() <= 0 || opt.connect_timeout.count() <= 0 ||
        opt.op_deadline.count() <= 0)
      throw std::invalid_argument("tcp: heartbeat, peer timeout, connect timeout and deadline must be positive");
    if (opt.peer_timeout <= opt.heartbeat_interval)
      throw std::invalid_argument("tcp: peer timeout (" + ms_text(opt.peer_timeout) +
                                  ") must exceed the heartbeat interval (" + ms_text(opt.heartbeat_interval) + ")");
  }
  ~node() { stop(); }
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  const node_id self;
  const tcp_options opt;
  asio::io_context io;
  std::optional<tcp::acceptor> acceptor;
  tcp_address bound;
  int wake_read = -1, wake_write = -1;
  std::thread accept_thread, heartbeat_thread;

  mutable std::mutex mutex;
  std::condition_variable cv;     // inbox, peers, address book, failure
  std::condition_variable hb_cv;  // wakes the heartbeat thread to stop
  bool stopping = false;
  bool stopped = false;
  int layers = 0;                  // known to a worker once the address book came
  std::set<node_id> inbound;       // who may connect to us
  std::set<node_id> reserved;      // authenticated, ACCEPT on its way
  std::map<node_id, std::shared_ptr<link>> peers;
  std::vector<std::shared_ptr<link>> links;  // every link with a thread
  std::deque<message> inbox;
  struct failure_info {
    node_id peer;
    std::string what;
    bool timeout;
  };
  std::optional<failure_info> failure;
  std::optional<std::string> book;
  std::vector<std::string> log_lines;

  std::atomic<std::uint64_t> sent{0}, received{0}, header_bytes{0}, matrix_bytes{0};

  std::string who() const { return self == coordinator_id ? "coordinator" : "layer " + std::to_string(self); }

  void log(const std::string& line) {
    const std::string text = "radmm tcp (" + who() + "): " + line;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (log_lines.size() < 10000) log_lines.push_back(text);
    }
    if (opt.log)
      opt.log(text);
    else
      std::cerr << text + "\n" << std::flush;
  }

  // ---- listening ----

  void listen(const std::string& host, std::uint16_t port) {
    boost::system::error_code ec;
    const std::string ip = resolve_bind_host(host);
    asio::ip::address addr = asio::ip::make_address(ip, ec);
    if (ec) {
      tcp::resolver resolver(io);
      auto results = resolver.resolve(ip, std::to_string(port), ec);
      if (ec || results.empty()) throw io_error("tcp: cannot resolve listen address '" + host + "': " + ec.message());
      addr = results.begin()->endpoint().address();
    }
    tcp::endpoint ep(addr, port);
    acceptor.emplace(io);
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) acceptor->non_blocking(true, ec);
    if (ec) {
      acceptor.reset();
      throw io_error("tcp: cannot listen on " + tcp_address{ip, port}.to_string() + ": " + ec.message());
    }
    ::fcntl(acceptor->native_handle(), F_SETFD, FD_CLOEXEC);
    const tcp::endpoint local = acceptor->local_endpoint(ec);
    bound = {local.address().to_string(), local.port()};
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) throw io_error(std::string("tcp: pipe: ") + std::strerror(errno));
    wake_read = p[0];
    wake_write = p[1];
    accept_thread = std::thread([this] { accept_loop(); });
    heartbeat_thread = std::thread([this] { heartbeat_loop(); });
  }

  void accept_loop() {
    for (;;) {
      pollfd fds[2] = {{acceptor->native_handle(), POLLIN, 0}, {wake_read, POLLIN, 0}};
      const int r = ::poll(fds, 2, 1000);
      if (r < 0 && errno != EINTR) {
        log(std::string("accept loop: poll failed: ") + std::strerror(errno));
        return;
      }
      if (fds[1].revents != 0) return;
      reap_finished();
      if (r <= 0 || (fds[0].revents & POLLIN) == 0) continue;
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      const int fd = ::accept4(acceptor->native_handle(), reinterpret_cast<sockaddr*>(&addr), &len,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          log(std::string("accept failed: ") + std::strerror(errno));
          std::this_thread::sleep_for(milliseconds(100));
        }
        continue;  // EAGAIN, EINTR, ECONNABORTED: try again
      }
      try {
        tcp::socket s(io);
        boost::system::error_code ec;
        s.assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
        if (ec) {
          ::close(fd);
          continue;
        }
        configure(s);
        const std::string remote = endpoint_text(s.remote_endpoint(ec));
        auto l = std::make_shared<link>(std::move(s), ec ? std::string("an unknown address") : remote);
        std::lock_guard<std::mutex> lock(mutex);
        if (stopping) return;  // l's socket closes as it goes
        l->thread = std::thread([this, l] { serve(l); });
        links.push_back(l);
      } catch (const std::exception& e) {
        log(std::string("cannot take a connection: ") + e.what());
      }
    }
  }

  // Joins the threads of refused connections so a stream of strangers cannot pile them up.
  void reap_finished() {
    std::vector<std::shared_ptr<link>> finished;
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto keep = std::partition(links.begin(), links.end(), [&](const std::shared_ptr<link>& l) {
        return !(l->done.load() && (l->peer < 0 || peers.count(l->peer) == 0 || peers.at(l->peer) != l));
      });
      finished.assign(keep, links.end());
      links.erase(keep, links.end());
    }
    for (auto& l : finished)
      if (l->thread.joinable()) l->thread.join();
  }

  // ---- the two sides of the handshake ----

  void serve(const std::shared_ptr<link>& l) {
    try {
      handshake_as_listener(l);
    } catch (const std::exception& e) {
      const std::string why = e.what();
      log("refused the connection from " + l->remote + ": " + why);
      try {
        std::lock_guard<std::mutex> sl(l->send_mutex);
        l->send_control(frame_kind::reject, why, milliseconds(200));
      } catch (...) {
        // It may have gone already; the reason is logged on our side.
      }
      l->shutdown(SHUT_RDWR);
      l->done = true;
      return;
    }
    read_loop(*l);
    l->done = true;
  }

  void handshake_as_listener(const std::shared_ptr<link>& shared) {
    link& l = *shared;
    const auto deadline = after(std::min(handshake_limit, opt.connect_timeout));
    const std::string ns = random_bytes(nonce_bytes);
    {
      std::lock_guard<std::mutex> sl(l.send_mutex);
      l.send_control(frame_kind::challenge, ns, handshake_limit);
    }
    auto [kind, body] = l.read_control(deadline);
    if (kind != frame_kind::auth) throw protocol_error(std::string("expected AUTH, got ") + to_string(kind));
    // nonce | i32 node | u16 port | u16 host length | host | mac
    constexpr std::size_t fixed = nonce_bytes + 4 + 2 + 2;
    if (body.size() < fixed + mac_bytes) throw protocol_error("malformed AUTH (" + std::to_string(body.size()) + " bytes)");
    const std::size_t host_len = static_cast<std::size_t>(read_le(body, nonce_bytes + 6, 2));
    if (body.size() != fixed + host_len + mac_bytes) throw protocol_error("malformed AUTH (host length)");
    const std::string signed_part = body.substr(0, fixed + host_len);
    const std::string mac = body.substr(fixed + host_len);
    if (!same_mac(mac, hmac_sha256(opt.token, auth_label + ns + signed_part)))
      throw protocol_error("authentication failed (wrong token)");
    const std::string nc = body.substr(0, nonce_bytes);
    const auto id = static_cast<node_id>(static_cast<std::int32_t>(read_le(body, nonce_bytes, 4)));
    tcp_address adv{body.substr(fixed, host_len), static_cast<std::uint16_t>(read_le(body, nonce_bytes + 4, 2))};
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (stopping) throw io_error("shutting down");
      if (inbound.count(id) == 0) {
        if (self == coordinator_id)
          throw protocol_error("node " + std::to_string(id) + " is not a layer of this run (1.." +
                               std::to_string(layers) + ")");
        throw protocol_error("node " + std::to_string(id) + " may not connect to " + who() +
                             " (only its lower neighbour does)");
      }
      if (reserved.count(id) != 0 || peers.count(id) != 0)
        throw protocol_error(peer_name(id) + " is already connected; a second connection is refused");
      reserved.insert(id);
    }
    l.peer = id;
    l.advertised = adv;
    if (l.advertised.host.empty()) l.advertised.host = l.remote.substr(0, l.remote.rfind(':'));
    std::string reply;
    append_le(reply, static_cast<std::uint32_t>(self), 4);
    try {
      std::lock_guard<std::mutex> sl(l.send_mutex);
      l.send_control(frame_kind::accept, reply + hmac_sha256(opt.token, accept_label + nc + ns + reply), handshake_limit);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      reserved.erase(id);
      throw;
    }
    std::lock_guard<std::mutex> lock(mutex);
    reserved.erase(id);
    peers[id] = shared;
    cv.notify_all();
  }

  void handshake_as_connector(link& l, node_id expected, const tcp_address& advertise,
                              clock_type::time_point deadline) {
    auto [kind, ns] = l.read_control(deadline);
    if (kind == frame_kind::reject) throw io_error(l.remote + " refused the connection: " + ns);
    if (kind != frame_kind::challenge || ns.size() != nonce_bytes)
      throw protocol_error(l.remote + " did not start the handshake (got " + to_string(kind) + ")");
    const std::string nc = random_bytes(nonce_bytes);
    std::string body = nc;
    append_le(body, static_cast<std::uint32_t>(self), 4);
    append_le(body, advertise.port, 2);
    append_le(body, advertise.host.size(), 2);
    body += advertise.host;
    body += hmac_sha256(opt.token, auth_label + ns + body);
    {
      std::lock_guard<std::mutex> sl(l.send_mutex);
      l.send_control(frame_kind::auth, body, handshake_limit);
    }
    auto [reply_kind, reply] = l.read_control(deadline);
    if (reply_kind == frame_kind::reject)
      throw io_error(peer_name(expected) + " at " + l.remote + " refused the connection: " + reply);
    if (reply_kind != frame_kind::accept || reply.size() != 4 + mac_bytes)
      throw protocol_error(peer_name(expected) + " at " + l.remote + " answered the handshake with " + to_string(reply_kind));
    const auto id = static_cast<node_id>(static_cast<std::int32_t>(read_le(reply, 0, 4)));
    if (id != expected)
      throw protocol_error(l.remote + " is node " + std::to_string(id) + ", expected " + peer_name(expected));
    if (!same_mac(reply.substr(4), hmac_sha256(opt.token, accept_label + nc + ns + reply.substr(0, 4))))
      throw io_error(peer_name(expected) + " at " + l.remote + " could not prove the token (different token files?)");
    l.peer = expected;
  }

  // Connects to `to` (retrying while refused or unreachable until `deadline`),
  // authenticates as this node and registers the link as `expected`.
  std::shared_ptr<link> dial(const tcp_address& to, node_id expected, const std::string& bind_ip,
                             tcp_address advertise, clock_type::time_point deadline) {
    std::string last_error = "no attempt";
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0) {
        if (clock_type::now() + milliseconds(100) >= deadline)
          throw timeout_error("tcp: cannot reach " + peer_name(expected) + " at " + to.to_string() + " within " +
                              ms_text(opt.connect_timeout) + ": " + last_error);
        std::this_thread::sleep_for(milliseconds(100));
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (failure) throw io_error(failure->what);
      }
      boost::system::error_code ec;
      tcp::resolver resolver(io);
      const auto results = resolver.resolve(to.host, std::to_string(to.port), ec);
      if (ec || results.empty()) {
        last_error = "cannot resolve '" + to.host + "': " + ec.message();
        continue;
      }
      for (const auto& entry : results) {
        const tcp::endpoint ep = entry.endpoint();
        tcp::socket s(io);
        s.open(ep.protocol(), ec);
        if (ec) {
          last_error = ec.message();
          continue;
        }
        ::fcntl(s.native_handle(), F_SETFD, FD_CLOEXEC);
        if (bind_ip != "0.0.0.0" && !bind_ip.empty()) {
          s.bind(tcp::endpoint(asio::ip::make_address(bind_ip, ec), 0), ec);
          if (ec) throw io_error("tcp: cannot bind to " + bind_ip + ": " + ec.message());
        }
        configure(s);
        int rc = ::connect(s.native_handle(), ep.data(), static_cast<socklen_t>(ep.size()));
        if (rc != 0 && errno == EINPROGRESS) {
          if (!wait_fd(s.native_handle(), POLLOUT, earlier(deadline, after(milliseconds(5000))))) {
            last_error = "connect timed out";
            continue;
          }
          int err = 0;
          socklen_t len = sizeof err;
          ::getsockopt(s.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len);
          rc = err == 0 ? 0 : -1;
          errno = err;
        }
        if (rc != 0) {
          last_error = std::strerror(errno);
          continue;
        }
        if (advertise.host.empty()) advertise.host = s.local_endpoint(ec).address().to_string();
        auto l = std::make_shared<link>(std::move(s), to.to_string());
        handshake_as_connector(*l, expected, advertise, deadline);
        std::lock_guard<std::mutex> lock(mutex);
        if (stopping) throw io_error("tcp: endpoint closed while connecting");
        if (peers.count(expected) != 0) throw protocol_error("tcp: " + peer_name(expected) + " is already connected");
        peers[expected] = l;
        l->thread = std::thread([this, l] {
          read_loop(*l);
          l->done = true;
        });
        links.push_back(l);
        cv.notify_all();
        return l;
      }
    }
  }

  // ---- after the handshake ----

  void read_loop(link& l) {
    try {
      for (;;) {
        std::uint8_t pre[frame_prefix_size];
        l.read_exact(pre, sizeof pre, opt.peer_timeout, clock_type::time_point::max(), true);
        const frame_prefix p = parse_frame_prefix(pre, opt.max_frame_bytes);
        std::vector<std::uint8_t> head(p.header_bytes);
        if (!head.empty()) l.read_exact(head.data(), head.size(), opt.peer_timeout, clock_type::time_point::max(), false);
        switch (p.kind) {
          case frame_kind::message: {
            message m = decode_message_frame(head.data(), head.size(), p.matrix_bytes, [&](void* dst, std::size_t n) {
              l.read_exact(dst, n, opt.peer_timeout, clock_type::time_point::max(), false);
            });
            if (m.sender != l.peer)
              throw protocol_error(std::string(to_string(m.type)) + " claims sender " + std::to_string(m.sender) +
                                   " on the link from " + peer_name(l.peer));
            if (m.receiver != self)
              throw protocol_error(std::string(to_string(m.type)) + " for node " + std::to_string(m.receiver) +
                                   " arrived at " + who());
            received.fetch_add(1, std::memory_order_relaxed);
            std::lock_guard<std::mutex> lock(mutex);
            inbox.push_back(std::move(m));
            cv.notify_all();
            break;
          }
          case frame_kind::heartbeat: break;
          case frame_kind::address_book: {
            if (self == coordinator_id || l.peer != coordinator_id)
              throw protocol_error("an address book from " + peer_name(l.peer));
            std::lock_guard<std::mutex> lock(mutex);
            book = std::string(head.begin(), head.end());
            cv.notify_all();
            break;
          }
          case frame_kind::goodbye: {
            const std::string reason(head.begin(), head.end());
            {
              std::lock_guard<std::mutex> lock(mutex);
              l.closed = true;
              // Without the coordinator a worker cannot go on; a neighbour that
              // says goodbye has simply finished first.
              if (!stopping && !failure && l.peer == coordinator_id)
                failure = failure_info{coordinator_id,
                                       "tcp: the coordinator closed the connection" +
                                           (reason.empty() ? std::string() : " (" + reason + ")"),
                                       false};
              cv.notify_all();
            }
            l.shutdown(SHUT_WR);  // lets its linger end at once
            return;
          }
          case frame_kind::reject:
            throw io_error("it closed the connection: " + std::string(head.begin(), head.end()));
          default:
            throw protocol_error(std::string("unexpected ") + to_string(p.kind) + " frame after the handshake");
        }
      }
    } catch (const timeout_error& e) {
      lose(l, e.what(), true, false);
    } catch (const closed_by_peer& e) {
      lose(l, e.what(), false, false);
    } catch (const protocol_error& e) {
      lose(l, std::string("protocol error: ") + e.what(), false, true);
    } catch (const std::exception& e) {
      lose(l, e.what(), false, false);
    }
  }

  // A registered link failed: record it (receive() throws once the inbox is
  // drained), log it, close it. Quiet while stopping.
  void lose(link& l, const std::string& why, bool timeout, bool tell_peer) {
    const std::string what = "tcp: lost " + l.name() + ": " + why;
    bool quiet = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      quiet = stopping || l.closed.exchange(true);
      if (!quiet && !failure) failure = failure_info{l.peer, what, timeout};
      cv.notify_all();
    }
    if (quiet) return;
    log("closing the connection to " + l.name() + ": " + why);
    if (tell_peer) {
      std::unique_lock<std::mutex> sl(l.send_mutex, std::try_to_lock);
      if (sl) try {
          l.send_control(frame_kind::reject, why, milliseconds(200));
        } catch (...) {
        }
    }
    l.shutdown(SHUT_RDWR);
  }

  void heartbeat_loop() {
    const auto period = std::max(milliseconds(5), opt.heartbeat_interval / 2);
    std::unique_lock<std::mutex> lock(mutex);
    while (!stopping) {
      hb_cv.wait_for(lock, period);
      if (stopping) break;
      std::vector<std::shared_ptr<link>> live;
      for (auto& [id, l] : peers)
        if (l && !l->closed) live.push_back(l);
      lock.unlock();
      const auto now = clock_type::now().time_since_epoch().count();
      const auto interval = std::chrono::duration_cast<clock_type::duration>(opt.heartbeat_interval).count();
      for (auto& l : live) {
        if (now - l->last_send_ns.load(std::memory_order_relaxed) < interval) continue;
        std::unique_lock<std::mutex> sl(l->send_mutex, std::try_to_lock);
        if (!sl) continue;  // a message is going out: that is traffic too
        try {
          l->send_control(frame_kind::heartbeat, {}, opt.op_deadline);
        } catch (const std::exception& e) {
          sl.unlock();
          lose(*l, std::string("heartbeat: ") + e.what(), dynamic_cast<const timeout_error*>(&e) != nullptr, false);
        }
      }
      lock.lock();
    }
  }

  // ---- ending ----

  void stop() noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (stopped) return;
      stopped = stopping = true;
      cv.notify_all();
      hb_cv.notify_all();
    }
    if (wake_write >= 0) {
      const char byte = 1;
      [[maybe_unused]] const ssize_t w = ::write(wake_write, &byte, 1);
    }
    if (accept_thread.joinable()) accept_thread.join();
    if (heartbeat_thread.joinable()) heartbeat_thread.join();
    std::vector<std::shared_ptr<link>> all;
    {
      std::lock_guard<std::mutex> lock(mutex);
      all = links;
    }
    // Say goodbye on every live link, then give the peers a moment to read it
    // and close their side, so nothing we sent is lost to a reset.
    for (auto& l : all) {
      if (l->peer < 0 || l->done || l->closed.exchange(true)) continue;
      try {
        std::lock_guard<std::mutex> sl(l->send_mutex);
        l->send_control(frame_kind::goodbye, {}, milliseconds(200));
      } catch (...) {
      }
      l->shutdown(SHUT_WR);
    }
    const auto until = clock_type::now() + goodbye_linger;
    for (auto& l : all)
      while (!l->done && clock_type::now() < until) std::this_thread::sleep_for(milliseconds(1));
    for (auto& l : all) {
      l->shutdown(SHUT_RDWR);
      if (l->thread.joinable()) l->thread.join();
      boost::system::error_code ec;
      l->sock.close(ec);
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      links.clear();
      peers.clear();
    }
    if (acceptor) {
      boost::system::error_code ec;
      acceptor->close(ec);
    }
    if (wake_read >= 0) ::close(wake_read);
    if (wake_write >= 0) ::close(wake_write);
    wake_read = wake_write = -1;
  }
};

namespace {

using node = tcp_listener::node;

class tcp_endpoint final : public transport {
 public:
  explicit tcp_endpoint(std::shared_ptr<node> n) : node_(std::move(n)) {}
  ~tcp_endpoint() override { node_->stop(); }

  node_id self() const override { return node_->self; }

  void send(const message& m) override {
    if (m.sender != node_->self)
      throw protocol_error("tcp send: message sender " + std::to_string(m.sender) + " on the endpoint of " +
                           node_->who());
    std::shared_ptr<link> l;
    {
      std::lock_guard<std::mutex> lock(node_->mutex);
      const auto it = node_->peers.find(m.receiver);
      if (it == node_->peers.end() || !it->second)
        throw protocol_error(std::string("tcp send: ") + to_string(m.type) + " to node " + std::to_string(m.receiver) +
                             ": " + node_->who() + " has no connection to it");
      l = it->second;
      if (node_->failure && node_->failure->peer == m.receiver) throw io_error(node_->failure->what);
    }
    if (l->closed) throw io_error("tcp send: " + l->name() + " has closed its connection");
    std::vector<std::uint8_t> head = encode_message_head(m);
    std::vector<iovec> iov{iovec{head.data(), head.size()}};
    std::vector<std::vector<std::uint8_t>> swapped;  // big-endian hosts only
    std::uint64_t matrix = 0;
    for (const auto& p : m.payloads) {
      const std::size_t n = p.matrix.bytes();
      if (n == 0) continue;
      matrix += n;
      if (detail::host_is_little_endian()) {
        iov.push_back(iovec{const_cast<double*>(p.matrix.data()), n});
      } else {
        const auto* b = reinterpret_cast<const std::uint8_t*>(p.matrix.data());
        swapped.emplace_back(b, b + n);
        detail::swap_doubles(reinterpret_cast<double*>(swapped.back().data()), n / 8);
        iov.push_back(iovec{swapped.back().data(), n});
      }
    }
    try {
      std::lock_guard<std::mutex> sl(l->send_mutex);
      l->write_all(std::move(iov), node_->opt.op_deadline);
    } catch (const timeout_error& e) {
      node_->lose(*l, e.what(), true, false);
      throw timeout_error("tcp send: " + std::string(to_string(m.type)) + " to " + l->name() + ": " + e.what());
    } catch (const std::exception& e) {
      node_->lose(*l, e.what(), false, false);
      throw io_error("tcp send: " + std::string(to_string(m.type)) + " to " + l->name() + ": " + e.what());
    }
    node_->sent.fetch_add(1, std::memory_order_relaxed);
    node_->header_bytes.fetch_add(head.size(), std::memory_order_relaxed);
    node_->matrix_bytes.fetch_add(matrix, std::memory_order_relaxed);
  }

  std::optional<message> receive(std::chrono::milliseconds wait) override {
    std::unique_lock<std::mutex> lock(node_->mutex);
    node_->cv.wait_for(lock, std::max(wait, milliseconds(0)),
                       [&] { return !node_->inbox.empty() || node_->failure || node_->stopping; });
    if (!node_->inbox.empty()) {
      message m = std::move(node_->inbox.front());
      node_->inbox.pop_front();
      return m;
    }
    if (node_->failure) {
      if (node_->failure->timeout) throw timeout_error(node_->failure->what);
      throw io_error(node_->failure->what);
    }
    if (node_->stopping) throw io_error("tcp: the endpoint of " + node_->who() + " is closed");
    return std::nullopt;
  }

  transport_counters counters() const override {
    transport_counters c;
    c.messages_sent = node_->sent.load(std::memory_order_relaxed);
    c.messages_received = node_->received.load(std::memory_order_relaxed);
    c.header_bytes_sent = node_->header_bytes.load(std::memory_order_relaxed);
    c.payload_bytes_copied = node_->matrix_bytes.load(std::memory_order_relaxed);
    return c;
  }

 private:
  std::shared_ptr<node> node_;
};

}  // namespace

// ---- coordinator ---------------------------------------------------------

tcp_listener::tcp_listener(int layers, const tcp_address& listen, const tcp_options& opt) {
  if (layers < 1) throw std::invalid_argument("tcp_listener: layers = " + std::to_string(layers));
  node_ = std::make_shared<node>(coordinator_id, opt);
  node_->layers = layers;
  for (int i = 1; i <= layers; ++i) node_->inbound.insert(i);
  node_->listen(listen.host, listen.port);
}

tcp_listener::~tcp_listener() {
  if (node_) node_->stop();
}

tcp_address tcp_listener::local_address() const { return node_->bound; }

std::vector<std::string> tcp_listener::rejections() const {
  std::lock_guard<std::mutex> lock(node_->mutex);
  return node_->log_lines;
}

std::vector<int> tcp_listener::connected() const {
  std::lock_guard<std::mutex> lock(node_->mutex);
  std::vector<int> out;
  for (const auto& entry : node_->peers) out.push_back(entry.first);
  return out;
}

std::string tcp_listener::address_book() const {
  std::lock_guard<std::mutex> lock(node_->mutex);
  return node_->book.value_or(std::string());
}

std::unique_ptr<transport> tcp_listener::accept_workers(std::chrono::milliseconds deadline,
                                                        const std::function<void()>& between_polls,
                                                        std::chrono::milliseconds poll) {
  const auto until = after(deadline);
  const int N = node_->layers;
  for (;;) {
    std::vector<int> missing;
    {
      std::unique_lock<std::mutex> lock(node_->mutex);
      auto all_here = [&] {
        for (int i = 1; i <= N; ++i)
          if (node_->peers.count(i) == 0) return false;
        return true;
      };
      node_->cv.wait_for(lock, poll, [&] { return all_here() || node_->failure.has_value(); });
      if (node_->failure) throw io_error(node_->failure->what);
      for (int i = 1; i <= N; ++i)
        if (node_->peers.count(i) == 0) missing.push_back(i);
    }
    if (missing.empty()) break;
    if (between_polls) between_polls();
    if (clock_type::now() >= until) {
      std::string list;
      for (int i : missing) list += (list.empty() ? "" : ", ") + std::to_string(i);
      throw timeout_error("tcp: layer" + std::string(missing.size() > 1 ? "s " : " ") + list + " did not connect to " +
                          node_->bound.to_string() + " within " + ms_text(deadline));
    }
  }
  // The address book: where each layer listens for its lower neighbour.
  std::ostringstream book;
  book << "layers " << N << "\n";
  std::vector<std::shared_ptr<link>> targets;
  {
    std::lock_guard<std::mutex> lock(node_->mutex);
    for (int i = 1; i <= N; ++i) {
      const auto& l = node_->peers.at(i);
      book << i << " " << l->advertised.host << " " << l->advertised.port << "\n";
      targets.push_back(l);
    }
  }
  {
    std::lock_guard<std::mutex> lock(node_->mutex);
    node_->book = book.str();
  }
  for (auto& l : targets) {
    try {
      std::lock_guard<std::mutex> sl(l->send_mutex);
      l->send_control(frame_kind::address_book, book.str(), node_->opt.op_deadline);
    } catch (const std::exception& e) {
      node_->lose(*l, e.what(), false, false);
      throw io_error("tcp: cannot send the address book to " + l->name() + ": " + e.what());
    }
  }
  return std::make_unique<tcp_endpoint>(node_);
}

// ---- worker --------------------------------------------------------------

std::unique_ptr<transport> connect_tcp_worker(const tcp_address& coordinator, node_id layer,
                                              const std::string& bind_host, const tcp_options& opt) {
  if (layer < 1) throw std::invalid_argument("connect_tcp_worker: layer " + std::to_string(layer) + " (layers are 1..N)");
  auto n = std::make_shared<node>(layer, opt);
  if (layer > 1) n->inbound.insert(layer - 1);
  const std::string bind_ip = resolve_bind_host(bind_host);
  n->listen(bind_ip, 0);
  const auto deadline = after(opt.connect_timeout);
  // Advertise the bind address, or, bound to every address, the one this host
  // uses to reach the coordinator (the likeliest to reach the neighbours too).
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(bind_ip, ec);
  tcp_address advertise{(!ec && ip.is_unspecified()) ? std::string() : n->bound.host, n->bound.port};
  n->dial(coordinator, coordinator_id, bind_ip, advertise, deadline);

  std::string book;
  {
    std::unique_lock<std::mutex> lock(n->mutex);
    n->cv.wait_until(lock, deadline, [&] { return n->book.has_value() || n->failure.has_value(); });
    if (n->failure) throw io_error(n->failure->what);
    if (!n->book) throw timeout_error("tcp: no address book from the coordinator within " + ms_text(opt.connect_timeout));
    book = *n->book;
  }
  std::istringstream in(book);
  std::string word;
  int N = 0;
  if (!(in >> word >> N) || word != "layers" || N < 1 || N > 1000000)
    throw protocol_error("tcp: malformed address book from the coordinator");
  std::vector<tcp_address> where(static_cast<std::size_t>(N) + 1);
  for (int i = 1; i <= N; ++i) {
    int id = 0;
    long port = -1;
    if (!(in >> id >> where[static_cast<std::size_t>(i)].host >> port) || id != i || port < 1 || port > 65535)
      throw protocol_error("tcp: malformed address book entry " + std::to_string(i));
    where[static_cast<std::size_t>(i)].port = static_cast<std::uint16_t>(port);
  }
  if (layer > N)
    throw protocol_error("tcp: layer " + std::to_string(layer) + " joined a run of " + std::to_string(N) + " layers");
  {
    std::lock_guard<std::mutex> lock(n->mutex);
    n->layers = N;
  }
  if (layer < N) n->dial(where[static_cast<std::size_t>(layer) + 1], layer + 1, bind_ip, advertise, deadline);
  if (layer > 1) {
    std::unique_lock<std::mutex> lock(n->mutex);
    n->cv.wait_until(lock, deadline, [&] { return n->peers.count(layer - 1) != 0 || n->failure.has_value(); });
    if (n->failure) throw io_error(n->failure->what);
    if (n->peers.count(layer - 1) == 0)
      throw timeout_error("tcp: layer " + std::to_string(layer - 1) + " did not connect within " +
                          ms_text(opt.connect_timeout));
  }
  return std::make_unique<tcp_endpoint>(n);
}

}  // namespace radmm::protocol
