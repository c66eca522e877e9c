// check, replay, stats, simulate and export on recorded in-process runs, and
// on traces damaged on purpose to break one invariant each.
#include "tests/tools/trace_test_util.hpp"
#include "coordinator/json.hpp"
#include "tools/trace_check.hpp"
#include "tools/trace_export.hpp"
#include "tools/trace_replay.hpp"
#include "tools/trace_timing.hpp"

#include <doctest/doctest.h>

#include <Eigen/Core>

#include <cmath>
#include <functional>
#include <sstream>

using namespace radmm;
namespace pr = radmm::protocol;
using pr::msg_type;

namespace {

// The trace without the messages `drop` picks (both their send and receive).
pr::trace_data without(const pr::trace_data& d, const std::function<bool(msg_type, int, int, std::int64_t)>& drop) {
  pr::trace_data out = d;
  out.sends.clear();
  out.receives.clear();
  out.order.clear();
  for (const auto& [kind, index] : d.order) {
    if (kind == pr::trace_record_kind::send) {
      const auto& s = d.sends[index];
      if (drop(s.type, s.sender, s.receiver, s.batch)) continue;
      out.order.emplace_back(kind, out.sends.size());
      out.sends.push_back(s);
    } else if (kind == pr::trace_record_kind::receive) {
      const auto& x = d.receives[index];
      if (drop(x.type, x.sender, x.receiver, x.batch)) continue;
      out.order.emplace_back(kind, out.receives.size());
      out.receives.push_back(x);
    } else {
      out.order.emplace_back(kind, index);
    }
  }
  return out;
}

tools::violation first_violation(const std::vector<tools::violation>& v) {
  REQUIRE_FALSE(v.empty());
  return v.front();
}

struct recorded {
  test::temp_dir dir;
  std::string path;
  coordinator::run_result result;
  explicit recorded(const tools::demo_options& o, bool payloads = true, bool per_node = false)
      : path(dir.file("run.rtrace")), result(test::record(o, path, payloads, per_node)) {}
};

}  // namespace

TEST_CASE("check accepts recorded runs of both algorithms, full and mini-batch") {
  for (const char* algo : {"2s", "3s"})
    for (std::int64_t batch : {0L, 8L}) {
      CAPTURE(algo);
      CAPTURE(batch);
      recorded run(test::small_run(algo, batch), false);
      const auto v = tools::check_trace(test::load(run.path));
      if (!v.empty()) CAPTURE(v.front().what);
      CHECK(v.empty());
    }
}

TEST_CASE("a TICK of the wrong iteration is reported with its sequence number") {
  recorded run(test::small_run());
  pr::trace_data d = pr::read_trace_file(run.path);
  // The third TICK from layer 1 to layer 2: both its send and receipt say k+1.
  int seen = 0;
  std::int64_t k = -1;
  for (auto& s : d.sends)
    if (s.type == msg_type::tick && s.sender == 1 && ++seen == 3) {
      k = s.iteration;
      s.iteration += 1;
      for (auto& x : d.receives)
        if (x.type == msg_type::tick && x.sender == 1 && x.channel_seq == s.channel_seq) x.iteration += 1;
    }
  REQUIRE(k >= 0);
  const tools::run_model r = tools::build_model(d);
  const tools::violation v = first_violation(tools::check_trace(r));
  CAPTURE(v.what);
  const tools::traced_message& m = r.messages[v.seq];
  CHECK(m.type == msg_type::tick);
  CHECK(m.iteration == k + 1);
  CHECK(v.what.find("layer 2 consumed") != std::string::npos);
  CHECK(v.what.find("calls for TICK k=" + std::to_string(k)) != std::string::npos);
}

TEST_CASE("a STEP that one worker never closes with SYNC is reported at the next STEP") {
  recorded run(test::small_run());
  const pr::trace_data d = without(pr::read_trace_file(run.path), [](msg_type t, int from, int, std::int64_t batch) {
    return t == msg_type::sync && from == 2 && batch == 0;
  });
  const tools::run_model r = tools::build_model(d);
  const tools::violation v = first_violation(tools::check_trace(r));
  CAPTURE(v.what);
  CHECK(r.messages[v.seq].type == msg_type::step);
  CHECK(r.messages[v.seq].batch == 1);
  CHECK(v.what.find("before STEP 0 was closed by layer 2's SYNC") != std::string::npos);
}

TEST_CASE("a message after QUIT, a missing QUIT and a foreign protocol version are violations") {
  recorded run(test::small_run());
  const pr::trace_data d = pr::read_trace_file(run.path);
  {
    // Layer 3 sends an extra SYNC after its BYE.
    pr::trace_data x = d;
    for (std::size_t i = 0; i < x.sends.size(); ++i)
      if (x.sends[i].type == msg_type::bye && x.sends[i].sender == 3) {
        pr::trace_send extra = x.sends[i];
        extra.type = msg_type::sync;
        extra.channel_seq += 1;
        extra.t_begin += 10;
        extra.t_end += 10;
        x.order.emplace_back(pr::trace_record_kind::send, x.sends.size());
        x.sends.push_back(extra);
        break;
      }
    const tools::violation v = first_violation(tools::check_trace(tools::build_model(x)));
    CAPTURE(v.what);
    CHECK(v.what.find("layer 3 sent") != std::string::npos);
    CHECK(v.what.find("after QUIT") != std::string::npos);
  }
  {
    const pr::trace_data x = without(d, [](msg_type t, int, int to, std::int64_t) {
      return (t == msg_type::quit && to == 1) || (t == msg_type::bye);
    });
    const auto v = tools::check_trace(tools::build_model(x));
    REQUIRE_FALSE(v.empty());
    CHECK(v.back().what.find("ends before QUIT") != std::string::npos);
  }
  {
    pr::trace_data x = d;
    for (auto& s : x.sends)
      if (s.type == msg_type::tock) {
        s.version = pr::protocol_version + 1;
        break;
      }
    const tools::violation v = first_violation(tools::check_trace(tools::build_model(x)));
    CAPTURE(v.what);
    CHECK(v.what.find("carries protocol version " + std::to_string(pr::protocol_version + 1)) != std::string::npos);
  }
}

TEST_CASE("replaying each layer reproduces every message it sent, bit for bit") {
  Eigen::setNbThreads(1);
  for (const char* algo : {"2s", "3s"}) {
    CAPTURE(algo);
    recorded run(test::small_run(algo, 8));
    const tools::run_model r = test::load(run.path);
    for (int layer = 1; layer <= r.layers; ++layer) {
      CAPTURE(layer);
      const auto res = tools::replay_layer(r, layer);
      CAPTURE(res.report);
      CHECK(res.identical);
      CHECK(res.messages_compared > 5);
      CHECK(res.payload_bytes_compared > 0);
    }
    const auto whole = tools::replay_run(r);
    CAPTURE(whole.report);
    CHECK(whole.identical);
    CHECK(whole.report.find("final weights of 3 of 3 layers identical") != std::string::npos);
  }
}

TEST_CASE("replay reports the first divergence when one recorded bit differs") {
  Eigen::setNbThreads(1);
  recorded run(test::small_run());
  pr::trace_data d = pr::read_trace_file(run.path);
  // Flip the lowest bit of one element of the second TOCK from layer 3 to layer 2.
  int seen = 0;
  std::int64_t k = -1;
  for (auto& s : d.sends)
    if (s.type == msg_type::tock && s.sender == 3 && ++seen == 2) {
      auto m = std::make_shared<core::mat>(*s.payloads[0].data);
      std::uint64_t bits;
      std::memcpy(&bits, m->data() + 1, 8);
      bits ^= 1;
      std::memcpy(m->data() + 1, &bits, 8);
      s.payloads[0].data = m;
      k = s.iteration;
    }
  REQUIRE(k > 0);
  const tools::run_model r = tools::build_model(d);
  const auto own = tools::replay_layer(r, 3);
  CAPTURE(own.report);
  CHECK_FALSE(own.identical);
  CHECK(own.report.find("payload W_3 differs at (1, 0)") != std::string::npos);
  CHECK(own.report.find("TOCK layer 3 -> layer 2, k=" + std::to_string(k)) != std::string::npos);
  // Layer 2 computes from the changed W_3: its next TICK differs.
  const auto next = tools::replay_layer(r, 2);
  CAPTURE(next.report);
  CHECK_FALSE(next.identical);
  CHECK(next.report.find("TICK layer 2 -> layer 3") != std::string::npos);
  // Layer 1 never sees W_3.
  CHECK(tools::replay_layer(r, 1).identical);
  CHECK_FALSE(tools::replay_run(r).identical);
}

TEST_CASE("replay without recorded payloads says what is missing") {
  recorded run(test::small_run(), false);
  const tools::run_model r = test::load(run.path);
  CHECK_THROWS_WITH_AS(tools::replay_layer(r, 1), doctest::Contains("--trace-payloads"), tools::trace_incomplete);
  CHECK_THROWS_AS(tools::replay_run(r), tools::trace_incomplete);
}

TEST_CASE("simulating a recorded run with its own timings predicts its wall time within ten percent") {
  // A run of some length: 5 layers, 150 iterations, recorded without payloads.
  tools::demo_options o;
  o.layers = 5;
  o.iterations = 150;
  o.samples = 512;
  o.sync_every = 10;
  recorded run(o, false);
  const tools::run_model r = test::load(run.path);
  const tools::sim_result rec = tools::simulate(r, {});
  const double real = static_cast<double>(rec.recorded_wall);
  REQUIRE(real > 0);
  const double err = (static_cast<double>(rec.wall) - real) / real;
  MESSAGE("recorded network: predicted " << rec.wall / 1e6 << " ms, recorded " << real / 1e6 << " ms ("
                                         << 100 * err << "%)");
  CHECK(std::abs(err) < 0.10);
  CHECK(rec.path.messages > 0);
  // The network model with the recorded median latency: reported, not held to
  // 10% (in-process latencies on a loaded machine are heavy-tailed).
  tools::sim_options m;
  m.latency_s = rec.estimated_latency_s;
  const tools::sim_result modelled = tools::simulate(r, m);
  MESSAGE("modelled network (" << rec.estimated_latency_s * 1e6 << " us): predicted " << modelled.wall / 1e6
                               << " ms");
  CHECK(modelled.wall > 0);
  // Everything on one worker with one core cannot beat the serial sum of the work.
  tools::sim_options one;
  one.workers = 1;
  const tools::sim_result serial = tools::simulate(r, one);
  const tools::run_stats st = tools::compute_stats(r);
  std::int64_t compute = 0;
  for (std::size_t n = 1; n < st.nodes.size(); ++n) compute += st.nodes[n].compute;
  CHECK(serial.wall >= compute);
  // Slower links can only slow the run down.
  tools::sim_options slow;
  slow.latency_s = 0.01;
  CHECK(tools::simulate(r, slow).wall > rec.wall);
}

TEST_CASE("stats split each node's time and name the critical path") {
  tools::demo_options o;
  o.layers = 4;
  o.iterations = 40;
  recorded run(o, false);
  const tools::run_model r = test::load(run.path);
  const tools::run_stats s = tools::compute_stats(r);
  CHECK(s.iterations == 40);
  REQUIRE(s.nodes.size() == 5);
  for (std::size_t n = 0; n < s.nodes.size(); ++n) {
    CAPTURE(n);
    const auto& t = s.nodes[n];
    CHECK(t.compute + t.waiting + t.sending + t.other >= s.wall);
    CHECK(t.compute + t.waiting + t.sending <= s.wall + s.wall / 100);
    if (n > 0) CHECK(t.by_block[static_cast<std::size_t>(pr::span_block::W)] > 0);
  }
  CHECK(s.overlap > 0);
  CHECK(s.recorded.path.length == s.recorded.wall);
  const std::string text = tools::format_stats(r, s);
  for (const char* words : {"computing", "waiting", "communicating", "critical path", "achieved overlap", "layer 4"})
    CHECK(text.find(words) != std::string::npos);
}

TEST_CASE("the chrome export is JSON with one track per node and a flow per message") {
  recorded run(test::small_run(), false);
  const tools::run_model r = test::load(run.path);
  std::ostringstream os;
  tools::write_chrome_trace(r, os);
  const auto doc = coordinator::json::parse(os.str(), "chrome.json");
  std::size_t tracks = 0, starts = 0, finishes = 0, spans = 0;
  for (const auto& e : doc.at("traceEvents").as_array()) {
    const std::string ph = e.at("ph").as_string();
    if (ph == "M" && e.at("name").as_string() == "thread_name") ++tracks;
    if (ph == "s") ++starts;
    if (ph == "f") ++finishes;
    if (ph == "X" && e.at("cat").as_string() == "compute") ++spans;
  }
  CHECK(tracks == 4);
  CHECK(starts == r.messages.size());
  CHECK(finishes == r.messages.size());
  CHECK(spans == r.spans.size());
}

TEST_CASE("the SVG export is a complete picture with rows, spans, messages and a legend") {
  recorded run(test::small_run("3s"), false);
  const tools::run_model r = test::load(run.path);
  std::ostringstream os;
  tools::write_svg(r, os);
  const std::string svg = os.str();
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  for (const char* words : {"coordinator", "layer 3", "W update", "U update", "Lambda update", "TICK (to layer i+1)",
                            "time (ms)", "<line", "<rect"})
    CHECK(svg.find(words) != std::string::npos);
  // Balanced: every opened group closes.
  std::size_t open = 0, close = 0;
  for (std::size_t at = 0; (at = svg.find("<g", at)) != std::string::npos; ++at) ++open;
  for (std::size_t at = 0; (at = svg.find("</g>", at)) != std::string::npos; ++at) ++close;
  CHECK(open == close);
}

TEST_CASE("latency and bandwidth flags read common units") {
  CHECK(tools::parse_duration_s("50us") == doctest::Approx(50e-6));
  CHECK(tools::parse_duration_s("0.2ms") == doctest::Approx(2e-4));
  CHECK(tools::parse_duration_s("1") == doctest::Approx(1));
  CHECK(tools::parse_bandwidth_Bps("10Gbit/s") == doctest::Approx(1.25e9));
  CHECK(tools::parse_bandwidth_Bps("10Gb/s") == doctest::Approx(1.25e9));
  CHECK(tools::parse_bandwidth_Bps("1.25GB/s") == doctest::Approx(1.25e9));
  CHECK(tools::parse_bandwidth_Bps("100MB") == doctest::Approx(1e8));
  CHECK_THROWS_AS(tools::parse_duration_s("fast"), std::invalid_argument);
  CHECK_THROWS_AS(tools::parse_duration_s("3 weeks"), std::invalid_argument);
  CHECK_THROWS_AS(tools::parse_bandwidth_Bps("-1GB/s"), std::invalid_argument);
}
