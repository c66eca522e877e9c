// Tier 4: the TCP transport on loopback. Frames, the handshake, hostile
// input, liveness, and a bounded fuzz of the frame decoder.
#include "protocol/tcp.hpp"
#include "protocol/tcp_frame.hpp"

#include "core/rng.hpp"
#include "protocol/shm.hpp"

#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace radmm;
using namespace radmm::protocol;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// Collects transport log lines instead of printing them.
struct log_sink {
  std::mutex mutex;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> fn() {
    return [this](const std::string& l) {
      std::lock_guard<std::mutex> lock(mutex);
      lines.push_back(l);
    };
  }
  bool contains(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& l : lines)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }
  std::string all() {
    std::lock_guard<std::mutex> lock(mutex);
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

tcp_options options(log_sink& sink, const std::string& token = "test-token") {
  tcp_options o;
  o.token = token;
  o.heartbeat_interval = 100ms;
  o.peer_timeout = 5000ms;
  o.connect_timeout = 10000ms;
  o.op_deadline = 5000ms;
  o.log = sink.fn();
  return o;
}

tcp_address loopback(const tcp_listener& l) { return {"127.0.0.1", l.local_address().port}; }

std::future<std::unique_ptr<transport>> start_worker(const tcp_address& to, node_id layer, const tcp_options& o,
                                                     const std::string& bind = "127.0.0.1") {
  return std::async(std::launch::async, [=] { return connect_tcp_worker(to, layer, bind, o); });
}

core::mat awkward_matrix(std::uint64_t seed, Eigen::Index rows, Eigen::Index cols) {
  core::rng r(seed);
  core::mat m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = r.normal();
  // Values a text or float32 path would mangle.
  if (m.size() >= 5) {
    m.data()[0] = -0.0;
    m.data()[1] = std::numeric_limits<double>::denorm_min();
    m.data()[2] = std::numeric_limits<double>::quiet_NaN();
    m.data()[3] = -std::numeric_limits<double>::infinity();
    m.data()[4] = 1.0 / 3.0;
  }
  return m;
}

bool bits_equal(const matrix_view& a, const core::mat& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

message make(msg_type type, node_id from, node_id to, std::int64_t iteration = 0) {
  message m;
  m.type = type;
  m.sender = from;
  m.receiver = to;
  m.iteration = iteration;
  return m;
}

message receive_within(transport& t, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until)
    if (auto m = t.receive(50ms)) return std::move(*m);
  FAIL("no message within " << limit.count() << " ms");
  return {};
}

// A raw client socket for hostile input.
struct raw_client {
  asio::io_context io;
  asio::ip::tcp::socket sock{io};
  explicit raw_client(std::uint16_t port) {
    sock.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  void write(const std::vector<std::uint8_t>& bytes) { asio::write(sock, asio::buffer(bytes)); }
  // Reads until the server closes; true when it did within the limit.
  bool closed_by_server(std::chrono::milliseconds limit) {
    sock.non_blocking(true);
    const auto until = std::chrono::steady_clock::now() + limit;
    std::uint8_t buf[4096];
    while (std::chrono::steady_clock::now() < until) {
      boost::system::error_code ec;
      const std::size_t n = sock.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      if (ec) return true;  // eof or reset
      (void)n;
    }
    return false;
  }
};

std::vector<std::uint8_t> prefix_bytes(std::uint32_t magic, std::uint16_t version, std::uint8_t kind,
                                       std::uint32_t header, std::uint64_t matrix) {
  std::vector<std::uint8_t> out(frame_prefix_size);
  write_frame_prefix(out.data(), {frame_kind::heartbeat, header, matrix});
  for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(magic >> (8 * i));
  out[4] = static_cast<std::uint8_t>(version);
  out[5] = static_cast<std::uint8_t>(version >> 8);
  out[6] = kind;
  return out;
}

// Waits until `pred` holds, up to `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

}  // namespace

TEST_CASE("a frame encodes and decodes to the same message, matrices bit for bit") {
  message m = make(msg_type::tick, 2, 3, 41);
  m.batch = 7;
  m.count = -3;
  m.flags = 5;
  m.text = "text";
  const core::mat V = awkward_matrix(1, 6, 5), U = awkward_matrix(2, 6, 0);
  m.payloads.push_back({payload_kind::V, 2, matrix_view(core::mat(V))});
  m.payloads.push_back({payload_kind::U, 2, matrix_view(core::mat(U))});
  const auto bytes = encode_frame(m);
  CHECK(bytes.size() == encode_message_head(m).size() + static_cast<std::size_t>(V.size()) * 8);
  const decoded_frame d = decode_frame(bytes.data(), bytes.size(), 1 << 20);
  REQUIRE(d.kind == frame_kind::message);
  CHECK(d.msg.type == msg_type::tick);
  CHECK(d.msg.sender == 2);
  CHECK(d.msg.receiver == 3);
  CHECK(d.msg.iteration == 41);
  CHECK(d.msg.batch == 7);
  CHECK(d.msg.count == -3);
  CHECK(d.msg.flags == 5);
  CHECK(d.msg.text == "text");
  REQUIRE(d.msg.payloads.size() == 2);
  CHECK(bits_equal(d.msg.payloads[0].matrix, V));
  CHECK(d.msg.payloads[1].matrix.rows() == 6);
  CHECK(d.msg.payloads[1].matrix.cols() == 0);
  const auto hb = encode_control_frame(frame_kind::goodbye, "done");
  const decoded_frame g = decode_frame(hb.data(), hb.size(), 1 << 20);
  CHECK(g.kind == frame_kind::goodbye);
  CHECK(g.body == "done");
}

TEST_CASE("messages cross loopback bit for bit, and TICK goes directly from layer 1 to layer 2") {
  log_sink sink;
  const tcp_options o = options(sink);
  tcp_listener listener(2, {"127.0.0.1", 0}, o);
  CHECK(listener.local_address().port != 0);
  auto f1 = start_worker(loopback(listener), 1, o);
  auto f2 = start_worker(loopback(listener), 2, o);
  auto coord = listener.accept_workers(10s);
  auto w1 = f1.get();
  auto w2 = f2.get();
  INFO(sink.all());
  CHECK(listener.address_book().find("layers 2\n1 127.0.0.1 ") == 0);

  const core::mat W = awkward_matrix(3, 7, 9), X = awkward_matrix(4, 3, 1000);
  message init = make(msg_type::init, 0, 1);
  init.text = "config";
  init.payloads.push_back({payload_kind::W, 1, matrix_view(core::mat(W))});
  init.payloads.push_back({payload_kind::X, 0, matrix_view(core::mat(X))});
  coord->send(init);
  message got = receive_within(*w1, 5s);
  CHECK(got.type == msg_type::init);
  CHECK(got.text == "config");
  REQUIRE(got.payloads.size() == 2);
  CHECK(bits_equal(got.payloads[0].matrix, W));
  CHECK(bits_equal(got.payloads[1].matrix, X));
  // The received matrix is an ordinary Eigen allocation (aligned like a serial run's).
  CHECK(reinterpret_cast<std::uintptr_t>(got.payloads[1].matrix.data()) % 16 == 0);

  message tick = make(msg_type::tick, 1, 2, 1);
  tick.payloads.push_back({payload_kind::V, 1, got.payloads[1].matrix});
  w1->send(tick);
  message t2 = receive_within(*w2, 5s);
  CHECK(t2.type == msg_type::tick);
  CHECK(t2.sender == 1);
  CHECK(bits_equal(t2.payloads.at(0).matrix, X));
  // Layer 1 cannot reach layer 2 through the coordinator: its only links are 0 and 2.
  CHECK_THROWS_AS(w1->send(make(msg_type::tick, 1, 3)), protocol_error);
  CHECK_THROWS_AS(w1->send(make(msg_type::tick, 2, 1)), protocol_error);  // wrong sender

  message sync = make(msg_type::sync, 2, 0, 1);
  sync.payloads.push_back({payload_kind::W, 2, t2.payloads[0].matrix});
  w2->send(sync);
  message back = receive_within(*coord, 5s);
  CHECK(back.sender == 2);
  CHECK(bits_equal(back.payloads.at(0).matrix, X));
  CHECK(coord->counters().messages_sent == 1);
  CHECK(coord->counters().messages_received == 1);
  CHECK(coord->counters().payload_bytes_copied == static_cast<std::uint64_t>(W.size() + X.size()) * 8);
  CHECK_FALSE(coord->receive(0ms).has_value());
  // Clean shutdown: workers leave (goodbye), nobody reports a lost peer.
  w1.reset();
  w2.reset();
  coord.reset();
  CHECK_FALSE(sink.contains("lost"));
}

TEST_CASE("a wrong token is refused on both sides and logged, and the listener keeps serving") {
  log_sink sink;
  tcp_listener listener(1, {"127.0.0.1", 0}, options(sink, "right"));
  log_sink other;
  CHECK_THROWS_WITH_AS(connect_tcp_worker(loopback(listener), 1, "127.0.0.1", options(other, "wrong")),
                       doctest::Contains("wrong token"), io_error);
  CHECK(sink.contains("authentication failed (wrong token)"));
  CHECK_THROWS_AS(tcp_listener(1, {"127.0.0.1", 0}, options(sink, "")), std::invalid_argument);
  auto f = start_worker(loopback(listener), 1, options(other, "right"));
  auto coord = listener.accept_workers(10s);
  auto w = f.get();
  w->send(make(msg_type::hello, 1, 0));
  CHECK(receive_within(*coord, 5s).type == msg_type::hello);
}

TEST_CASE("garbage, a bad magic, a bad version and an oversized frame close their connection with a reason") {
  log_sink sink;
  tcp_listener listener(1, {"127.0.0.1", 0}, options(sink));
  const std::uint16_t port = listener.local_address().port;
  struct hostile {
    const char* name;
    std::vector<std::uint8_t> bytes;
    const char* reason;
  };
  std::vector<std::uint8_t> garbage(64);
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<std::uint8_t>(i * 37 + 11);
  const std::vector<hostile> cases = {
      {"garbage", garbage, "bad magic"},
      {"bad magic", prefix_bytes(0x12345678, protocol_version, 2, 0, 0), "bad magic 0x12345678"},
      {"bad version", prefix_bytes(frame_magic, 99, 2, 0, 0), "protocol version 99"},
      {"oversized", prefix_bytes(frame_magic, protocol_version, 1, 4000, std::uint64_t{1} << 40), "over the limit"},
      {"oversized control", prefix_bytes(frame_magic, protocol_version, 4, 1u << 30, 0), "limit"},
      {"message before auth", prefix_bytes(frame_magic, protocol_version, 1, 100, 0), "before the handshake"},
      {"unknown kind", prefix_bytes(frame_magic, protocol_version, 200, 0, 0), "unknown frame kind 200"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    raw_client client(port);
    client.write(c.bytes);
    CHECK(client.closed_by_server(5s));
    CHECK(eventually([&] { return sink.contains(c.reason); }, 5s));
  }
  // A truncated frame: the client reads the challenge, sends part of a
  // prefix and half-closes.
  {
    raw_client client(port);
    std::vector<std::uint8_t> challenge(frame_prefix_size + 32);
    asio::read(client.sock, asio::buffer(challenge));
    client.write({0x52, 0x44, 0x4d});
    client.sock.shutdown(asio::ip::tcp::socket::shutdown_send);
    CHECK(client.closed_by_server(5s));
  }
  CHECK(eventually([&] { return sink.contains("truncated frame"); }, 5s));
  INFO(sink.all());
  // The listener is still fine.
  auto f = start_worker(loopback(listener), 1, options(sink));
  auto coord = listener.accept_workers(10s);
  auto w = f.get();
  w->send(make(msg_type::ready, 1, 0));
  CHECK(receive_within(*coord, 5s).type == msg_type::ready);
  CHECK(listener.rejections().size() >= cases.size());
}

TEST_CASE("an oversized frame from an authenticated peer closes that link with a reason on both sides") {
  log_sink sink;
  tcp_options small = options(sink);
  small.max_frame_bytes = 1 << 20;
  tcp_listener listener(1, {"127.0.0.1", 0}, small);
  auto f = start_worker(loopback(listener), 1, options(sink));
  auto coord = listener.accept_workers(10s);
  auto w = f.get();
  message big = make(msg_type::sync, 1, 0);
  big.payloads.push_back({payload_kind::W, 1, matrix_view(core::mat(core::mat::Zero(512, 512)))});  // 2 MiB
  try {
    w->send(big);  // may succeed into the socket buffers, or fail once the link is closed
  } catch (const io_error&) {
  }
  CHECK_THROWS_WITH_AS(receive_within(*coord, 5s), doctest::Contains("over the limit"), io_error);
  CHECK(sink.contains("layer 1"));
  // The worker learns why (REJECT), or at least that the link is gone.
  CHECK_THROWS_AS(receive_within(*w, 5s), io_error);
}

TEST_CASE("a layer that connects twice is refused, and so is a node that is not a layer of the run") {
  log_sink sink;
  const tcp_options o = options(sink);
  tcp_listener listener(2, {"127.0.0.1", 0}, o);
  auto f1 = start_worker(loopback(listener), 1, o);
  // Layer 1 is in once the listener says so (its connect call blocks for the address book).
  REQUIRE(eventually([&] { return listener.connected() == std::vector<int>{1}; }, 10s));
  CHECK_THROWS_WITH_AS(connect_tcp_worker(loopback(listener), 1, "127.0.0.1", o),
                       doctest::Contains("layer 1 is already connected"), io_error);
  CHECK_THROWS_WITH_AS(connect_tcp_worker(loopback(listener), 5, "127.0.0.1", o),
                       doctest::Contains("not a layer of this run"), io_error);
  auto f2 = start_worker(loopback(listener), 2, o);
  auto coord = listener.accept_workers(10s);
  auto w1 = f1.get();
  auto w2 = f2.get();
  // After the run started, a late duplicate is refused as well and the run goes on.
  CHECK_THROWS_WITH_AS(connect_tcp_worker(loopback(listener), 2, "127.0.0.1", o),
                       doctest::Contains("already connected"), io_error);
  w2->send(make(msg_type::hello, 2, 0));
  CHECK(receive_within(*coord, 5s).sender == 2);
  CHECK(sink.contains("second connection is refused"));
}

TEST_CASE("a listener gives up on layers that never connect, naming them") {
  log_sink sink;
  auto listener = std::make_unique<tcp_listener>(3, tcp_address{"127.0.0.1", 0}, options(sink));
  auto f = start_worker(loopback(*listener), 2, options(sink));
  REQUIRE(eventually([&] { return listener->connected() == std::vector<int>{2}; }, 10s));
  CHECK_THROWS_WITH_AS(listener->accept_workers(300ms), doctest::Contains("layers 1, 3 did not connect"),
                       timeout_error);
  listener.reset();  // the waiting worker hears goodbye and gives up
  CHECK_THROWS_WITH_AS(f.get(), doctest::Contains("the coordinator closed the connection"), io_error);
}

TEST_CASE("a peer that falls silent is detected within the heartbeat timeout") {
  log_sink sink;
  tcp_options fast = options(sink);
  fast.heartbeat_interval = 50ms;
  fast.peer_timeout = 400ms;
  tcp_options mute = options(sink);
  mute.heartbeat_interval = std::chrono::hours(1);  // never sends a heartbeat
  mute.peer_timeout = std::chrono::hours(2);
  tcp_listener listener(1, {"127.0.0.1", 0}, fast);
  auto f = start_worker(loopback(listener), 1, mute);
  auto coord = listener.accept_workers(10s);
  auto w = f.get();
  const auto t0 = std::chrono::steady_clock::now();
  std::string what;
  try {
    while (std::chrono::steady_clock::now() - t0 < 10s) coord->receive(100ms);
  } catch (const timeout_error& e) {
    what = e.what();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(what);
  CHECK(what.find("layer 1") != std::string::npos);
  CHECK(what.find("heartbeat timeout") != std::string::npos);
  CHECK(seconds < 0.4 + 2.0);  // generous: a loaded machine
  CHECK_THROWS_AS(coord->send(make(msg_type::step, 0, 1)), io_error);
}

TEST_CASE("a peer that disappears without goodbye is reported at once, naming it") {
  log_sink sink;
  const tcp_options o = options(sink);
  // Fork while this process has no threads yet; the child learns the port
  // through a pipe once the listener (and its threads) exist.
  int port_pipe[2];
  REQUIRE(::pipe(port_pipe) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    // The child connects, says HELLO and dies without running any destructor.
    ::close(port_pipe[1]);
    std::uint16_t port = 0;
    if (::read(port_pipe[0], &port, sizeof port) != static_cast<ssize_t>(sizeof port)) ::_exit(2);
    try {
      auto w = connect_tcp_worker({"127.0.0.1", port}, 1, "127.0.0.1", o);
      w->send(make(msg_type::hello, 1, 0));
      std::this_thread::sleep_for(300ms);
      ::_exit(0);  // with the endpoint still open: no goodbye
    } catch (...) {
    }
    ::_exit(1);
  }
  ::close(port_pipe[0]);
  tcp_listener listener(1, {"127.0.0.1", 0}, o);
  const std::uint16_t port = listener.local_address().port;
  CHECK(::write(port_pipe[1], &port, sizeof port) == static_cast<ssize_t>(sizeof port));
  ::close(port_pipe[1]);
  REQUIRE(child > 0);
  auto coord = listener.accept_workers(10s);
  CHECK(receive_within(*coord, 5s).type == msg_type::hello);
  std::string what;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    while (std::chrono::steady_clock::now() - t0 < 10s) coord->receive(100ms);
  } catch (const io_error& e) {
    what = e.what();
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  INFO(what);
  CHECK(what.find("lost layer 1") != std::string::npos);
  CHECK(what.find("without goodbye") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
}

TEST_CASE("the frame decoder survives 20000 mutated frames: each decodes or is a protocol_error") {
  const std::uint64_t seed = 20240605;
  MESSAGE("fuzz seed " << seed);
  std::mt19937_64 gen(seed);
  std::vector<std::vector<std::uint8_t>> seeds;
  {
    message m = make(msg_type::tock, 3, 2, 17);
    m.payloads.push_back({payload_kind::W, 3, matrix_view(awkward_matrix(5, 4, 3))});
    m.payloads.push_back({payload_kind::V, 3, matrix_view(awkward_matrix(6, 4, 2))});
    m.payloads.push_back({payload_kind::Lambda, 3, matrix_view(core::mat(0, 2))});
    seeds.push_back(encode_frame(m));
    message e = make(msg_type::error, 1, 0);
    e.text = "something failed";
    seeds.push_back(encode_frame(e));
    seeds.push_back(encode_control_frame(frame_kind::address_book, "layers 2\n1 10.0.0.1 5000\n2 10.0.0.2 5001\n"));
    seeds.push_back(encode_control_frame(frame_kind::heartbeat, ""));
  }
  int ok = 0, rejected = 0;
  for (int round = 0; round < 20000; ++round) {
    std::vector<std::uint8_t> f = seeds[static_cast<std::size_t>(gen() % seeds.size())];
    const int mutations = 1 + static_cast<int>(gen() % 4);
    for (int k = 0; k < mutations; ++k) {
      switch (gen() % 6) {
        case 0:  // flip a bit anywhere
          if (!f.empty()) f[gen() % f.size()] ^= static_cast<std::uint8_t>(1u << (gen() % 8));
          break;
        case 1:  // overwrite a byte of the prefix or header (where the sizes live)
          if (!f.empty()) f[gen() % std::min<std::size_t>(f.size(), 120)] = static_cast<std::uint8_t>(gen());
          break;
        case 2:  // truncate
          if (!f.empty()) f.resize(gen() % f.size());
          break;
        case 3:  // append junk
          for (int j = static_cast<int>(gen() % 16); j > 0; --j) f.push_back(static_cast<std::uint8_t>(gen()));
          break;
        case 4: {  // forge a size field of the prefix
          if (f.size() >= frame_prefix_size) {
            const std::uint64_t v = gen() % 3 == 0 ? gen() : gen() % 4096;
            const std::size_t at = gen() % 2 == 0 ? 8 : 12;
            for (int i = 0; i < (at == 8 ? 4 : 8); ++i) f[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
          }
          break;
        }
        default:  // swap two bytes
          if (f.size() > 1) std::swap(f[gen() % f.size()], f[gen() % f.size()]);
      }
    }
    try {
      const decoded_frame d = decode_frame(f.data(), f.size(), 1 << 20);
      ++ok;
      for (const auto& p : d.msg.payloads) CHECK(p.matrix.bytes() <= f.size());
    } catch (const protocol_error&) {
      ++rejected;
    } catch (const std::exception& e) {
      FAIL("round " << round << ": not a protocol_error: " << e.what());
    }
  }
  MESSAGE(ok << " mutated frames decoded, " << rejected << " rejected");
  CHECK(ok + rejected == 20000);
  CHECK(rejected > 0);
}

TEST_CASE("parse_tcp_address reads HOST:PORT and [V6]:PORT and refuses the rest") {
  CHECK(parse_tcp_address("10.1.2.3:5000").host == "10.1.2.3");
  CHECK(parse_tcp_address("node7:0").port == 0);
  CHECK(parse_tcp_address("[::1]:80").host == "::1");
  CHECK(parse_tcp_address("[::1]:80").to_string() == "[::1]:80");
  CHECK_THROWS_AS(parse_tcp_address("host"), std::invalid_argument);
  CHECK_THROWS_AS(parse_tcp_address("host:99999"), std::invalid_argument);
  CHECK_THROWS_AS(parse_tcp_address("::1:80"), std::invalid_argument);
  CHECK(resolve_bind_host("") == "0.0.0.0");
  CHECK(resolve_bind_host("lo") == "127.0.0.1");
  CHECK(resolve_bind_host("10.0.0.1") == "10.0.0.1");
}

// A measurement, not a test: run with --no-skip to print round-trip latencies.
TEST_CASE("round-trip latency over loopback TCP next to shared memory" * doctest::skip()) {
  log_sink sink;
  const tcp_options o = options(sink);
  auto rtt = [](transport& a, transport& b, const core::mat& payload, int rounds) {
    std::thread echo([&] {
      for (int r = 0; r < rounds; ++r) {
        std::optional<message> m;
        while (!(m = b.receive(1000ms))) {
        }
        message back = make(msg_type::sync, b.self(), a.self(), r);
        back.payloads = m->payloads;
        b.send(back);
      }
    });
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < rounds; ++r) {
      message m = make(msg_type::step, a.self(), b.self(), r);
      if (payload.size() > 0) m.payloads.push_back({payload_kind::W, 1, matrix_view(core::mat(payload))});
      a.send(m);
      while (!a.receive(1000ms)) {
      }
    }
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / rounds;
    echo.join();
    return us;
  };
  tcp_listener listener(1, {"127.0.0.1", 0}, o);
  auto f = start_worker(loopback(listener), 1, o);
  auto tcp0 = listener.accept_workers(10s);
  auto tcp1 = f.get();
  shm_options so;
  so.default_segment_bytes = std::size_t{64} << 20;
  shm_run run(1, so);
  auto shm0 = open_shm_endpoint(run.id(), 0, 1, 10s);
  auto shm1 = open_shm_endpoint(run.id(), 1, 1, 10s);
  std::ostringstream report;
  report << "round trip (us), payload each way: tcp loopback | shm\n";
  for (auto [rows, cols] : {std::pair<int, int>{0, 0}, {1, 128}, {256, 256}, {256, 1024}, {1024, 1024}}) {
    const core::mat m = core::mat::Random(rows, cols);
    const int rounds = rows * cols >= 256 * 1024 ? 30 : 300;
    rtt(*tcp0, *tcp1, m, 3);
    rtt(*shm0, *shm1, m, 3);
    const double t = rtt(*tcp0, *tcp1, m, rounds);
    const double s = rtt(*shm0, *shm1, m, rounds);
    report << "  " << rows << "x" << cols << " (" << rows * cols * 8 / 1024 << " KiB): " << t << " | " << s
           << "  ratio " << t / s << "\n";
  }
  MESSAGE(report.str());
}
