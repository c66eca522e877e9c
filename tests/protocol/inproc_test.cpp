#include "protocol/inproc.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <vector>

using namespace radmm;
using namespace radmm::protocol;
using namespace std::chrono_literals;

namespace {

message make(msg_type type, node_id from, node_id to, std::int64_t iteration) {
  message m;
  m.type = type;
  m.sender = from;
  m.receiver = to;
  m.iteration = iteration;
  return m;
}

}  // namespace

TEST_CASE("a ping-pong between two threads delivers every message in order") {
  inproc_network net(2);
  auto a = net.endpoint(0);
  auto b = net.endpoint(1);
  constexpr int rounds = 2000;
  std::thread peer([&] {
    for (int k = 0; k < rounds; ++k) {
      auto m = b->receive(5s);
      if (!m || m->iteration != k) {
        net.close();
        return;
      }
      b->send(make(msg_type::tock, 1, 0, k));
    }
  });
  for (int k = 0; k < rounds; ++k) {
    a->send(make(msg_type::tick, 0, 1, k));
    auto reply = a->receive(5s);
    REQUIRE(reply);
    REQUIRE(reply->type == msg_type::tock);
    REQUIRE(reply->iteration == k);
  }
  peer.join();
  CHECK(a->counters().messages_sent == rounds);
  CHECK(a->counters().messages_received == rounds);
  CHECK(b->counters().messages_sent == rounds);
}

TEST_CASE("a received matrix is the sender's buffer, not a copy") {
  inproc_network net(3);
  auto a = net.endpoint(1);
  auto b = net.endpoint(2);
  auto w = std::make_shared<const core::mat>(core::mat::Random(5, 4));
  message m = make(msg_type::tick, 1, 2, 7);
  m.payloads.push_back({payload_kind::V, 1, matrix_view(w)});
  a->send(m);
  auto got = b->receive(1s);
  REQUIRE(got);
  const payload* v = got->find(payload_kind::V);
  REQUIRE(v != nullptr);
  CHECK(v->matrix.data() == w->data());
  CHECK(v->matrix.view() == *w);
  CHECK(a->counters().payload_bytes_copied == 0);
}

TEST_CASE("receive returns nothing when no message arrives in time") {
  inproc_network net(2);
  auto a = net.endpoint(0);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(a->receive(30ms).has_value());
  CHECK(std::chrono::steady_clock::now() - t0 >= 25ms);
  CHECK_FALSE(a->receive(0ms).has_value());
}

TEST_CASE("sending to a node outside the network or under another name is a protocol error") {
  inproc_network net(2);
  auto a = net.endpoint(0);
  CHECK_THROWS_AS(a->send(make(msg_type::step, 0, 2, 0)), protocol_error);
  CHECK_THROWS_AS(a->send(make(msg_type::step, 0, -1, 0)), protocol_error);
  CHECK_THROWS_AS(a->send(make(msg_type::step, 1, 1, 0)), protocol_error);
}

TEST_CASE("a header too large for the wire is refused in process too") {
  inproc_network net(2);
  auto a = net.endpoint(0);
  message m = make(msg_type::init, 0, 1, 0);
  m.text.assign(max_message_bytes + 1, 'c');
  CHECK_THROWS_AS(a->send(m), protocol_error);
}

TEST_CASE("an endpoint can be taken once per node while it lives") {
  inproc_network net(2);
  CHECK_THROWS_AS(net.endpoint(2), std::invalid_argument);
  {
    auto a = net.endpoint(1);
    CHECK_THROWS_AS(net.endpoint(1), std::invalid_argument);
  }
  CHECK_NOTHROW(net.endpoint(1));
}

TEST_CASE("closing the network wakes a blocked receiver with io_error") {
  inproc_network net(2);
  auto a = net.endpoint(0);
  auto b = net.endpoint(1);
  std::atomic<bool> got_io_error{false};
  std::thread waiter([&] {
    try {
      (void)b->receive(10s);
    } catch (const io_error&) {
      got_io_error = true;
    }
  });
  std::this_thread::sleep_for(20ms);
  const auto t0 = std::chrono::steady_clock::now();
  net.close();
  waiter.join();
  CHECK(got_io_error);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  CHECK_THROWS_AS(a->send(make(msg_type::quit, 0, 1, 0)), io_error);
}

TEST_CASE("endpoints outlive their network object") {
  std::unique_ptr<transport> a, b;
  {
    inproc_network net(2);
    a = net.endpoint(0);
    b = net.endpoint(1);
  }
  a->send(make(msg_type::hello, 0, 1, 0));
  CHECK(b->receive(1s).has_value());
}

// The sleep happens in the sending thread before the message is enqueued, so
// each sender's messages keep their order; only the interleaving across
// senders changes. The PRU protocol may rely on the former, never the latter.
TEST_CASE("delaying_transport keeps each sender's order while shuffling senders") {
  constexpr int senders = 4, per_sender = 300;
  inproc_network net(senders + 1);
  auto sink = net.endpoint(0);
  std::vector<std::thread> threads;
  for (int s = 1; s <= senders; ++s) {
    threads.emplace_back([&net, s] {
      delaying_transport t(net.endpoint(s), 0.3, 300us, 1000 + static_cast<std::uint64_t>(s));
      for (int k = 0; k < per_sender; ++k) t.send(make(msg_type::sync, s, 0, k));
    });
  }
  std::map<node_id, std::int64_t> last;
  int received = 0, switches = 0;
  node_id previous = -1;
  while (received < senders * per_sender) {
    auto m = sink->receive(5s);
    REQUIRE(m);
    const auto it = last.find(m->sender);
    if (it != last.end()) REQUIRE(m->iteration == it->second + 1);
    else REQUIRE(m->iteration == 0);
    last[m->sender] = m->iteration;
    switches += m->sender != previous;
    previous = m->sender;
    ++received;
  }
  for (auto& t : threads) t.join();
  CHECK(last.size() == senders);
  CHECK(switches > senders);  // the senders did interleave
}

TEST_CASE("delaying_transport validates its arguments") {
  inproc_network net(2);
  CHECK_THROWS_AS(delaying_transport(net.endpoint(0), 1.5, 1ms, 1), std::invalid_argument);
  CHECK_THROWS_AS(delaying_transport(std::unique_ptr<transport>{}, 0.5, 1ms, 1), std::invalid_argument);
}
