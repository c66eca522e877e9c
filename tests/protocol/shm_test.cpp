#include "protocol/shm.hpp"

#include "core/rng.hpp"

#include <doctest/doctest.h>

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace radmm;
using namespace radmm::protocol;
using namespace std::chrono_literals;

namespace {

// Small objects: tests must not depend on a large /dev/shm.
shm_options small(int layers) {
  shm_options o;
  o.default_segment_bytes = 1 << 20;
  o.ring_bytes = 32 << 10;
  o.segment_bytes.assign(static_cast<std::size_t>(layers) + 1, o.default_segment_bytes);
  return o;
}

std::vector<std::string> shm_entries(const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.compare(0, prefix.size(), prefix) == 0) out.push_back(name);
    }
    ::closedir(d);
  }
  return out;
}

std::vector<std::string> run_entries(const std::string& id) {
  auto a = shm_entries("radmm_" + id + "_");
  auto b = shm_entries("radmm_" + id + ".");
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

core::mat random_matrix(core::rng& r, Eigen::Index rows, Eigen::Index cols) {
  core::mat m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = r.normal();
  return m;
}

message make(msg_type type, node_id from, node_id to, std::int64_t iteration = 0) {
  message m;
  m.type = type;
  m.sender = from;
  m.receiver = to;
  m.iteration = iteration;
  return m;
}

bool bits_equal(const matrix_view& a, const core::mat& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

bool aligned64(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

// Runs `body` in a forked child that never returns into doctest; its result is
// the exit status (1 on any exception).
pid_t spawn(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 1;
    try {
      code = body();
    } catch (...) {
      code = 1;
    }
    ::_exit(code);
  }
  REQUIRE(pid > 0);
  return pid;
}

// Exit status of `pid`, or -1 (after a SIGKILL) when it is still running at the deadline.
int wait_for(pid_t pid, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  int status = 0;
  while (std::chrono::steady_clock::now() < end) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(5ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

// Kills a child still running when a test leaves its scope early (a failed
// REQUIRE), so no process outlives the suite.
struct child_guard {
  pid_t pid;
  ~child_guard() {
    int status = 0;
    if (pid > 0 && ::waitpid(pid, &status, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
  }
};

}  // namespace

TEST_CASE("a run creates owner-only objects and removes every one of them") {
  std::string id;
  {
    shm_run run(2, small(2));
    id = run.id();
    CHECK(id.find('/') == std::string::npos);
    const auto names = run.object_names();
    CHECK(names.size() == 2 * 3 + 1);
    CHECK(run_entries(id).size() == names.size());
    struct stat st {};
    REQUIRE(::stat(("/dev/shm/radmm_" + id + "_q0").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(::stat(("/dev/shm/radmm_" + id + "_s2").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto a = open_shm_endpoint(id, 0, 2, 1s);
    auto b = open_shm_endpoint(id, 2, 2, 1s);
    message m = make(msg_type::step, 0, 2);
    m.payloads.push_back({payload_kind::X, 0, matrix_view(core::mat::Ones(3, 3))});
    a->send(m);
    CHECK(b->receive(1s).has_value());
  }
  CHECK(run_entries(id).empty());
  CHECK(shm_entries(".radmm-tmp-").empty());
}

TEST_CASE("moving a run moves ownership of its objects") {
  shm_run a(1, small(1));
  const std::string id = a.id();
  {
    shm_run b(std::move(a));
    CHECK(b.id() == id);
    CHECK(a.object_names().empty());
    CHECK_FALSE(run_entries(id).empty());
  }
  CHECK(run_entries(id).empty());
  a.remove_all();  // moved-from: harmless
}

TEST_CASE("matrices cross shared memory bit for bit, 64-byte aligned, without a copy on receipt") {
  shm_run run(2, small(2));
  auto a = open_shm_endpoint(run.id(), 1, 2, 1s);
  auto b = open_shm_endpoint(run.id(), 2, 2, 1s);
  core::rng r(11);
  const core::mat v = random_matrix(r, 7, 5);
  core::mat odd(1, 3);
  odd << -0.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::denorm_min();
  message m = make(msg_type::tick, 1, 2, 41);
  m.text = "hello";
  m.payloads.push_back({payload_kind::V, 1, matrix_view(core::mat(v))});
  m.payloads.push_back({payload_kind::U, 1, matrix_view(core::mat(odd))});
  m.payloads.push_back({payload_kind::Lambda, 1, matrix_view(core::mat(0, 4))});
  a->send(m);

  auto got = b->receive(1s);
  REQUIRE(got);
  CHECK(got->type == msg_type::tick);
  CHECK(got->sender == 1);
  CHECK(got->iteration == 41);
  CHECK(got->text == "hello");
  REQUIRE(got->payloads.size() == 3);
  CHECK(bits_equal(got->payloads[0].matrix, v));
  CHECK(bits_equal(got->payloads[1].matrix, odd));
  CHECK(aligned64(got->payloads[0].matrix.data()));
  CHECK(aligned64(got->payloads[1].matrix.data()));
  CHECK(got->payloads[0].matrix.data() != v.data());
  CHECK(got->payloads[2].matrix.rows() == 0);
  CHECK(got->payloads[2].matrix.cols() == 4);
  CHECK(got->payloads[2].matrix.empty());

  CHECK(a->counters().messages_sent == 1);
  CHECK(a->counters().payload_bytes_copied == (35 + 3) * sizeof(double));
  CHECK(b->counters().messages_received == 1);

  // Views keep the sender's segment mapped after the receiving endpoint is gone.
  const payload p = got->payloads[0];
  got.reset();
  b.reset();
  CHECK(bits_equal(p.matrix, v));
}

TEST_CASE("a forked process opens its endpoint and answers with the matrix it received") {
  shm_run run(1, small(1));
  const std::string id = run.id();
  const pid_t child = spawn([&id] {
    auto t = open_shm_endpoint(id, 1, 1, 2s);
    auto m = t->receive(10s);
    if (!m || m->type != msg_type::step || m->payloads.size() != 1) return 2;
    if (reinterpret_cast<std::uintptr_t>(m->payloads[0].matrix.data()) % 64 != 0) return 3;
    message reply = make(msg_type::sync, 1, 0, m->iteration + 1);
    core::mat doubled = 2.0 * m->payloads[0].matrix.view();
    reply.payloads.push_back({payload_kind::W, 1, m->payloads[0].matrix});  // forwarded as is
    reply.payloads.push_back({payload_kind::metrics, 1, matrix_view(std::move(doubled))});
    t->send(reply);
    return 0;
  });
  child_guard guard{child};
  auto coordinator = open_shm_endpoint(id, 0, 1, 2s);
  core::rng r(12);
  const core::mat w = random_matrix(r, 33, 17);
  message step = make(msg_type::step, 0, 1, 9);
  step.payloads.push_back({payload_kind::W, 1, matrix_view(core::mat(w))});
  coordinator->send(step);
  auto reply = coordinator->receive(10s);
  CHECK(wait_for(child, 10s) == 0);
  REQUIRE(reply);
  CHECK(reply->type == msg_type::sync);
  CHECK(reply->iteration == 10);
  REQUIRE(reply->payloads.size() == 2);
  CHECK(bits_equal(reply->payloads[0].matrix, w));
  const core::mat doubled = 2.0 * w;
  CHECK(bits_equal(reply->payloads[1].matrix, doubled));
  CHECK(aligned64(reply->payloads[1].matrix.data()));
}

TEST_CASE("a slot written again before it is read is reported as a stale payload") {
  shm_run run(1, small(1));
  auto a = open_shm_endpoint(run.id(), 0, 1, 1s);
  auto b = open_shm_endpoint(run.id(), 1, 1, 1s);
  message m = make(msg_type::step, 0, 1, 1);
  m.payloads.push_back({payload_kind::W, 1, matrix_view(core::mat::Constant(4, 4, 1.0))});
  a->send(m);
  m.iteration = 2;
  m.payloads[0].matrix = matrix_view(core::mat::Constant(4, 4, 2.0));
  a->send(m);  // same slot (receiver 1, STEP, W, layer 1): violates the reuse rule
  CHECK_THROWS_WITH_AS(b->receive(1s), doctest::Contains("stale payload"), protocol_error);
  auto second = b->receive(1s);  // the newer one is intact
  REQUIRE(second);
  CHECK(second->payloads[0].matrix.view()(0, 0) == 2.0);

  // Growing a slot frees the old block; a descriptor naming it is stale too.
  m.payloads[0].matrix = matrix_view(core::mat::Constant(2, 2, 3.0));
  a->send(m);
  m.payloads[0].matrix = matrix_view(core::mat::Constant(40, 40, 4.0));
  a->send(m);
  CHECK_THROWS_WITH_AS(b->receive(1s), doctest::Contains("stale payload"), protocol_error);
  auto grown = b->receive(1s);
  REQUIRE(grown);
  CHECK(grown->payloads[0].matrix.view()(39, 39) == 4.0);

  // Distinct slots (another kind, or another message type) do not interfere.
  message tick = make(msg_type::tick, 0, 1, 3);
  tick.payloads.push_back({payload_kind::W, 1, matrix_view(core::mat::Constant(4, 4, 5.0))});
  tick.payloads.push_back({payload_kind::V, 1, matrix_view(core::mat::Constant(4, 4, 6.0))});
  a->send(tick);
  a->send(m);
  auto t1 = b->receive(1s);
  auto t2 = b->receive(1s);
  REQUIRE(t1);
  REQUIRE(t2);
  CHECK(t1->payloads[1].matrix.view()(0, 0) == 6.0);
}

TEST_CASE("a payload that does not fit its segment is an io_error that names the fix") {
  shm_options o = small(1);
  o.segment_bytes[0] = 64 << 10;
  shm_run run(1, o);
  auto a = open_shm_endpoint(run.id(), 0, 1, 1s);
  message m = make(msg_type::init, 0, 1);
  m.payloads.push_back({payload_kind::X, 0, matrix_view(core::mat::Zero(100, 100))});
  CHECK_THROWS_WITH_AS(a->send(m), doctest::Contains("segment_bytes"), io_error);
}

TEST_CASE("shm_segment_bytes leaves room for the slots it was sized for") {
  const std::vector<std::size_t> slots = {8 * 100 * 100, 8 * 7 * 50, 8, 8 * 64 * 64};
  shm_options o = small(1);
  o.segment_bytes[0] = shm_segment_bytes(slots);
  shm_run run(1, o);
  auto a = open_shm_endpoint(run.id(), 0, 1, 1s);
  auto b = open_shm_endpoint(run.id(), 1, 1, 1s);
  const std::vector<std::pair<Eigen::Index, Eigen::Index>> shapes = {{100, 100}, {7, 50}, {1, 1}, {64, 64}};
  message m = make(msg_type::init, 0, 1);
  std::int32_t layer = 0;
  for (auto [rows, cols] : shapes)
    m.payloads.push_back({payload_kind::W, layer++, matrix_view(core::mat::Ones(rows, cols))});
  CHECK_NOTHROW(a->send(m));
  CHECK(b->receive(1s).has_value());
}

TEST_CASE("a full ring makes send time out within its deadline, and it recovers") {
  shm_options o = small(1);
  o.ring_bytes = max_message_bytes + 64;
  shm_run run(1, o);
  auto a = open_shm_endpoint(run.id(), 0, 1, 200ms);
  auto b = open_shm_endpoint(run.id(), 1, 1, 200ms);
  int sent = 0;
  std::chrono::steady_clock::duration took{};
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      a->send(make(msg_type::tick, 0, 1, sent));
    } catch (const timeout_error&) {
      took = std::chrono::steady_clock::now() - t0;
      break;
    }
    ++sent;
    REQUIRE(sent < 100000);
  }
  CHECK(sent > 10);
  CHECK(took >= 190ms);
  CHECK(took < 2s);
  // A receiver that drains one record lets a sender that waits get through.
  std::thread drain([&] {
    std::this_thread::sleep_for(50ms);
    (void)b->receive(1s);
  });
  CHECK_NOTHROW(a->send(make(msg_type::tick, 0, 1, sent)));
  drain.join();
  for (int k = 1; k <= sent; ++k) {
    auto m = b->receive(1s);
    REQUIRE(m);
    CHECK(m->iteration == k);
  }
}

TEST_CASE("a receiver asleep in receive wakes as soon as a message arrives") {
  shm_run run(1, small(1));
  auto a = open_shm_endpoint(run.id(), 0, 1, 1s);
  auto b = open_shm_endpoint(run.id(), 1, 1, 1s);
  CHECK_FALSE(b->receive(20ms).has_value());
  std::chrono::steady_clock::duration took{};
  std::thread waiter([&] {
    const auto t0 = std::chrono::steady_clock::now();
    auto m = b->receive(10s);
    took = std::chrono::steady_clock::now() - t0;
    CHECK(m.has_value());
  });
  std::this_thread::sleep_for(50ms);
  a->send(make(msg_type::quit, 0, 1));
  waiter.join();
  CHECK(took < 2s);
}

TEST_CASE("a sender killed mid-stream leaves the inbox usable and uncorrupted") {
  shm_run run(1, small(1));
  const std::string id = run.id();
  const pid_t child = spawn([&id]() -> int {
    auto t = open_shm_endpoint(id, 1, 1, 10s);
    message m = make(msg_type::sync, 1, 0);
    m.text.assign(300, 's');  // no payloads: rewriting one slot per message would break the reuse rule
    for (std::int64_t k = 0;; ++k) {
      m.iteration = k;
      t->send(m);
    }
  });
  child_guard guard{child};
  auto coordinator = open_shm_endpoint(id, 0, 1, 1s);
  std::int64_t expect = 0;
  for (; expect < 500; ++expect) {
    auto m = coordinator->receive(10s);
    REQUIRE(m);
    REQUIRE(m->iteration == expect);
  }
  ::kill(child, SIGKILL);
  CHECK(wait_for(child, 5s) == 128 + SIGKILL);
  // Everything published before the kill decodes; a half-written record is
  // never visible.
  while (auto m = coordinator->receive(0ms)) {
    CHECK(m->iteration == expect);
    ++expect;
  }
  message self = make(msg_type::error, 0, 0);
  coordinator->send(self);
  CHECK(coordinator->receive(1s).has_value());
}

TEST_CASE("remove_stale removes a killed owner's run and spares live ones") {
  shm_run live(1, small(1));
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = spawn([&] {
    ::close(fds[0]);
    shm_run run(2, small(2));
    const std::string id = run.id();
    if (::write(fds[1], id.data(), id.size()) != static_cast<ssize_t>(id.size())) return 2;
    ::close(fds[1]);
    for (;;) ::pause();
  });
  child_guard guard{child};
  ::close(fds[1]);
  char buf[128] = {};
  ssize_t n = 0;
  for (ssize_t k; (k = ::read(fds[0], buf + n, sizeof buf - 1 - static_cast<std::size_t>(n))) > 0;) n += k;
  ::close(fds[0]);
  const std::string dead_id(buf, static_cast<std::size_t>(n));
  REQUIRE_FALSE(dead_id.empty());
  CHECK(run_entries(dead_id).size() == 2 * 3 + 1);

  // While the owner lives, its run is not stale.
  shm_run::remove_stale();
  CHECK(run_entries(dead_id).size() == 2 * 3 + 1);

  ::kill(child, SIGKILL);
  CHECK(wait_for(child, 5s) == 128 + SIGKILL);
  CHECK(run_entries(dead_id).size() == 2 * 3 + 1);  // SIGKILL ran no destructor
  CHECK(shm_run::remove_stale() >= 2 * 3 + 1);
  CHECK(run_entries(dead_id).empty());
  CHECK(run_entries(live.id()).size() == live.object_names().size());
  CHECK_NOTHROW(open_shm_endpoint(live.id(), 1, 1, 1s));
}

TEST_CASE("opening a missing or mismatched run is an io_error") {
  CHECK_THROWS_AS(open_shm_endpoint("1_000000000000", 0, 1, 1s), io_error);
  CHECK_THROWS_AS(open_shm_endpoint("../etc", 0, 1, 1s), std::invalid_argument);
  shm_run run(2, small(2));
  CHECK_THROWS_WITH_AS(open_shm_endpoint(run.id(), 0, 3, 1s), doctest::Contains("layers"), io_error);
  CHECK_THROWS_AS(open_shm_endpoint(run.id(), 3, 2, 1s), std::invalid_argument);
  auto a = open_shm_endpoint(run.id(), 0, 2, 1s);
  CHECK_THROWS_AS(a->send(make(msg_type::step, 0, 3)), protocol_error);
  CHECK_THROWS_AS(a->send(make(msg_type::step, 1, 2)), protocol_error);
}
