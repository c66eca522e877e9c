#include "tools/trace_timing.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace radmm::tools {

namespace {
// Time arithmetic that saturates instead of overflowing: a damaged trace can
// carry absurd timestamps, and the tools must report, not trap.
std::int64_t sat_add(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
  return r;
}
std::int64_t sat_sub(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
  return r;
}
}  // namespace

namespace pr = protocol;
using pr::msg_type;

namespace {

constexpr std::int64_t never = std::numeric_limits<std::int64_t>::min();

enum class op_kind { work, send, receive };
struct op {
  op_kind kind;
  std::int64_t t0, t1;  // recorded, aligned
  std::size_t msg;      // seq (send, receive)
};

std::int64_t clip(std::int64_t a, std::int64_t b, std::int64_t lo, std::int64_t hi) {
  return std::max<std::int64_t>(0, std::min(b, hi) - std::max(a, lo));
}

std::string ms(std::int64_t ns) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3f ms", static_cast<double>(ns) / 1e6);
  return buf;
}

std::string pct(std::int64_t part, std::int64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%5.1f%%", whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return buf;
}

std::vector<std::vector<op>> build_programs(const run_model& r) {
  std::vector<std::vector<op>> prog(static_cast<std::size_t>(r.nodes()));
  for (std::size_t n = 0; n < prog.size(); ++n) {
    std::int64_t cursor = never;
    for (const node_event& e : r.events[n]) {
      if (e.kind == event_kind::span) continue;
      if (cursor == never) cursor = e.t_begin;
      if (e.t_begin > cursor) prog[n].push_back({op_kind::work, cursor, e.t_begin, 0});
      prog[n].push_back({e.kind == event_kind::send ? op_kind::send : op_kind::receive, e.t_begin, e.t_end, e.index});
      cursor = std::max(cursor, e.t_end);
    }
  }
  return prog;
}

std::uint64_t message_bytes(const run_model& r, const traced_message& m) {
  std::uint64_t b = 64;  // the header, roughly
  if (const pr::trace_send* s = r.send_of(m)) {
    b += s->text.size();
    for (const auto& p : s->payloads) b += 37 + p.bytes();
  }
  return b;
}

// What one node costs to take a message that is already there.
std::vector<std::int64_t> receive_costs(const run_model& r) {
  std::vector<std::int64_t> c(static_cast<std::size_t>(r.nodes()), std::numeric_limits<std::int64_t>::max());
  for (const auto& m : r.messages)
    if (m.receive) {
      auto& x = c[static_cast<std::size_t>(m.receiver)];
      x = std::min(x, std::max<std::int64_t>(0, m.t_receive - m.t_wait));
    }
  for (auto& x : c)
    if (x == std::numeric_limits<std::int64_t>::max()) x = 0;
  return c;
}

struct sim_core {
  std::vector<std::vector<op>> prog;
  std::vector<std::int64_t> recv_cost;
  std::vector<std::int64_t> recorded_latency;  // per message seq, from its send's start; -1: unknown
  double median_latency_ns = 0;
};

sim_core prepare(const run_model& r) {
  sim_core s;
  s.prog = build_programs(r);
  s.recv_cost = receive_costs(r);
  s.recorded_latency.assign(r.messages.size(), -1);
  std::vector<std::int64_t> awaited;
  for (const auto& m : r.messages) {
    if (!m.send || !m.receive) continue;
    const std::int64_t c = s.recv_cost[static_cast<std::size_t>(m.receiver)];
    const std::int64_t delivered = m.t_receive - c;
    // From the start of the send: a receiver may take a message before its
    // sender's send() has returned.
    s.recorded_latency[m.seq] = std::max<std::int64_t>(0, delivered - m.t_send_begin);
    if (m.t_receive - m.t_wait > 2 * c + 1000) awaited.push_back(std::max<std::int64_t>(0, delivered - m.t_send_end));
  }
  if (!awaited.empty()) {
    std::nth_element(awaited.begin(), awaited.begin() + static_cast<std::ptrdiff_t>(awaited.size() / 2), awaited.end());
    s.median_latency_ns = static_cast<double>(awaited[awaited.size() / 2]);
  }
  return s;
}

// The top-level span time of `node` inside [a, b], by block.
void add_span_time(const run_model& r, pr::node_id node, std::int64_t a, std::int64_t b,
                   std::array<std::int64_t, block_count>& by_block) {
  for (const node_event& e : r.events[static_cast<std::size_t>(node)]) {
    if (e.kind != event_kind::span) continue;
    const aligned_span& s = r.spans[e.index];
    if (s.depth != 0) continue;
    if (s.t_begin >= b) break;
    by_block[static_cast<std::size_t>(s.block)] += clip(s.t_begin, s.t_end, a, b);
  }
}

}  // namespace

sim_result simulate(const run_model& r, const sim_options& opt) {
  const int N = r.layers;
  if (N < 1) throw trace_incomplete("the trace has no layers to simulate");
  sim_core core = prepare(r);
  sim_result res;
  res.recorded_network = !opt.latency_s && !opt.bandwidth_Bps;
  res.estimated_latency_s = core.median_latency_ns / 1e9;
  res.latency_s = opt.latency_s.value_or(res.estimated_latency_s);
  res.bandwidth_Bps = opt.bandwidth_Bps.value_or(0);
  const int P = opt.workers > 0 ? opt.workers : N;
  res.workers = P;
  if (opt.cores < 1) throw std::invalid_argument("--cores must be >= 1");

  // Placement: layers in contiguous blocks, the coordinator alone.
  const auto nodes = static_cast<std::size_t>(r.nodes());
  std::vector<int> host(nodes, 0);
  for (int i = 1; i <= N; ++i) host[static_cast<std::size_t>(i)] = 1 + (i - 1) * std::min(P, N) / N;
  const int hosts = 1 + std::min(P, N);
  // Each host: its cores' free times, and which op last held each.
  struct core_slot {
    std::int64_t free = never;
    std::pair<std::size_t, std::size_t> last{SIZE_MAX, 0};
  };
  std::vector<std::vector<core_slot>> cores(static_cast<std::size_t>(hosts),
                                            std::vector<core_slot>(static_cast<std::size_t>(opt.cores)));
  cores[0].assign(nodes, core_slot{});  // the coordinator's host never contends

  // When a message can be taken, given its simulated send [begin, end].
  auto arrival_of = [&](const traced_message& m, std::int64_t begin, std::int64_t end) -> std::int64_t {
    const std::int64_t rec = core.recorded_latency[m.seq];
    if (res.recorded_network || host[static_cast<std::size_t>(m.sender)] == host[static_cast<std::size_t>(m.receiver)])
      return rec >= 0 ? sat_add(begin, rec) : sat_add(end, static_cast<std::int64_t>(core.median_latency_ns));
    double t = res.latency_s;
    if (res.bandwidth_Bps > 0) t += static_cast<double>(message_bytes(r, m)) / res.bandwidth_Bps;
    return end + static_cast<std::int64_t>(std::llround(t * 1e9));
  };

  // Simulated times and causes per op.
  enum class cause { none, prev, core_wait, message };
  struct done_op {
    std::int64_t ready = 0, start = 0, end = 0;  // ready: when its node could have started it
    cause why = cause::none;
    std::pair<std::size_t, std::size_t> from{SIZE_MAX, 0};  // (node, op)
  };
  std::vector<std::vector<done_op>> sim(nodes);
  std::vector<std::size_t> next(nodes, 0);
  std::vector<std::int64_t> ready(nodes, never);
  std::vector<std::int64_t> arrival(r.messages.size(), never);
  std::vector<std::pair<std::size_t, std::size_t>> sent_by(r.messages.size(), {SIZE_MAX, 0});
  for (std::size_t n = 0; n < nodes; ++n) {
    sim[n].resize(core.prog[n].size());
    if (!core.prog[n].empty()) ready[n] = core.prog[n][0].t0;
  }
  // Messages received but never sent (a partial trace) arrive when they did.
  for (const auto& m : r.messages)
    if (!m.send && m.receive) arrival[m.seq] = m.t_receive - core.recv_cost[static_cast<std::size_t>(m.receiver)];

  for (;;) {
    std::size_t best = SIZE_MAX;
    std::int64_t best_start = std::numeric_limits<std::int64_t>::max();
    for (std::size_t n = 0; n < nodes; ++n) {
      if (next[n] >= core.prog[n].size()) continue;
      const op& o = core.prog[n][next[n]];
      std::int64_t start = ready[n];
      if (o.kind == op_kind::receive) {
        if (arrival[o.msg] == never) continue;
      } else {
        auto& slots = cores[static_cast<std::size_t>(host[n])];
        std::int64_t f = std::numeric_limits<std::int64_t>::max();
        for (const auto& c : slots) f = std::min(f, c.free);
        start = std::max(start, f);
      }
      if (start < best_start) {
        best_start = start;
        best = n;
      }
    }
    if (best == SIZE_MAX) break;
    const std::size_t n = best;
    const std::size_t k = next[n]++;
    const op& o = core.prog[n][k];
    done_op& d = sim[n][k];
    d.ready = ready[n];
    const std::pair<std::size_t, std::size_t> prev{k > 0 ? n : SIZE_MAX, k > 0 ? k - 1 : 0};
    if (o.kind == op_kind::receive) {
      const std::int64_t a = arrival[o.msg];
      d.start = ready[n];
      if (a > ready[n]) {
        d.why = cause::message;
        d.from = sent_by[o.msg];
      } else {
        d.why = k > 0 ? cause::prev : cause::none;
        d.from = prev;
      }
      d.end = sat_add(std::max(ready[n], a), core.recv_cost[n]);
    } else {
      auto& slots = cores[static_cast<std::size_t>(host[n])];
      auto slot = std::min_element(slots.begin(), slots.end(),
                                   [](const core_slot& a, const core_slot& b) { return a.free < b.free; });
      d.start = std::max(ready[n], slot->free);
      if (slot->free > ready[n]) {
        d.why = cause::core_wait;
        d.from = slot->last;
      } else {
        d.why = k > 0 ? cause::prev : cause::none;
        d.from = prev;
      }
      d.end = sat_add(d.start, sat_sub(o.t1, o.t0));
      slot->free = d.end;
      slot->last = {n, k};
      if (o.kind == op_kind::send) {
        const traced_message& m = r.messages[o.msg];
        arrival[o.msg] = arrival_of(m, d.start, d.end);
        sent_by[o.msg] = {n, k};
      }
    }
    ready[n] = d.end;
  }
  for (std::size_t n = 0; n < nodes; ++n)
    if (next[n] < core.prog[n].size()) {
      const op& o = core.prog[n][next[n]];
      throw std::runtime_error("simulate: " + node_name(static_cast<pr::node_id>(n)) + " waits forever for " +
                               describe(r.messages[o.msg]) + " (its send is not in the trace)");
    }

  // The training window: the coordinator's first STEP send to its last SYNC receipt.
  std::optional<std::size_t> first_step, last_sync;
  for (std::size_t k = 0; k < core.prog[0].size(); ++k) {
    const op& o = core.prog[0][k];
    if (o.kind == op_kind::work) continue;
    const traced_message& m = r.messages[o.msg];
    if (o.kind == op_kind::send && m.type == msg_type::step && !first_step) first_step = k;
    if (o.kind == op_kind::receive && m.type == msg_type::sync) last_sync = k;
  }
  res.recorded_wall = r.run_end - r.run_begin;
  if (!first_step || !last_sync) {
    std::int64_t a = std::numeric_limits<std::int64_t>::max(), b = never;
    for (const auto& s : sim)
      for (const auto& d : s) {
        a = std::min(a, d.start);
        b = std::max(b, d.end);
      }
    res.wall = b > a ? b - a : 0;
    return res;
  }
  const std::int64_t begin = sim[0][*first_step].start;
  res.wall = sim[0][*last_sync].end - begin;

  // Critical path: back from the last SYNC receipt.
  critical_path& cp = res.path;
  cp.length = res.wall;
  cp.by_node.assign(nodes, 0);
  std::pair<std::size_t, std::size_t> at{0, *last_sync};
  while (at.first != SIZE_MAX) {
    const std::size_t n = at.first, k = at.second;
    const op& o = core.prog[n][k];
    const done_op& d = sim[n][k];
    if (d.end <= begin) break;
    const std::int64_t from = std::max(d.start, begin);
    switch (o.kind) {
      case op_kind::work: {
        std::array<std::int64_t, block_count> b{};
        add_span_time(r, static_cast<pr::node_id>(n), o.t0, o.t1, b);
        std::int64_t spans = 0;
        for (std::size_t i = 0; i < block_count; ++i) {
          cp.compute[i] += b[i];
          spans += b[i];
        }
        cp.other_work += std::max<std::int64_t>(0, (d.end - from) - spans);
        cp.by_node[n] += d.end - from;
        break;
      }
      case op_kind::send:
        cp.sending += d.end - from;
        cp.by_node[n] += d.end - from;
        break;
      case op_kind::receive: {
        const std::int64_t taken = std::min<std::int64_t>(core.recv_cost[n], d.end - from);
        cp.receiving += taken;
        cp.by_node[n] += taken;
        if (d.why == cause::message && d.from.first != SIZE_MAX) {
          const done_op& s = sim[d.from.first][d.from.second];
          cp.latency += std::max<std::int64_t>(0, (d.end - taken) - std::max(s.end, begin));
          ++cp.messages;
        }
        break;
      }
    }
    if (d.why == cause::core_wait) cp.core_wait += std::max<std::int64_t>(0, d.start - std::max(d.ready, begin));
    if (d.why == cause::none) break;
    at = d.from;
  }
  return res;
}

run_stats compute_stats(const run_model& r) {
  run_stats s;
  const std::int64_t a = r.run_begin, b = r.run_end;
  s.wall = b - a;
  s.nodes.assign(static_cast<std::size_t>(r.nodes()), node_time{});
  for (const auto& m : r.messages) {
    if (m.send) {
      auto& t = s.nodes[static_cast<std::size_t>(m.sender)];
      t.sending += clip(m.t_send_begin, m.t_send_end, a, b);
      ++t.sent;
      t.bytes_sent += message_bytes(r, m);
    }
    if (m.receive) {
      auto& t = s.nodes[static_cast<std::size_t>(m.receiver)];
      t.waiting += clip(m.t_wait, m.t_receive, a, b);
      ++t.received;
    }
    if (m.sender == 0 && m.receiver == 1 && m.type == msg_type::step && m.send) s.iterations += r.send_of(m)->count;
  }
  std::int64_t layer_compute = 0;
  for (const auto& sp : r.spans) {
    if (sp.depth != 0) continue;
    auto& t = s.nodes[static_cast<std::size_t>(sp.node)];
    const std::int64_t c = clip(sp.t_begin, sp.t_end, a, b);
    t.compute += c;
    t.by_block[static_cast<std::size_t>(sp.block)] += c;
    ++t.spans;
    if (sp.node >= 1) layer_compute += c;
  }
  for (auto& t : s.nodes) t.other = std::max<std::int64_t>(0, s.wall - t.compute - t.waiting - t.sending);
  s.overlap = s.wall > 0 ? static_cast<double>(layer_compute) / static_cast<double>(s.wall) : 0;
  if (r.layers >= 1) s.recorded = simulate(r, sim_options{});
  return s;
}

std::string format_stats(const run_model& r, const run_stats& s) {
  std::ostringstream os;
  char line[256];
  os << "training window: " << ms(s.wall) << " (first STEP to last SYNC), " << s.iterations << " iterations, "
     << (s.iterations > 0 ? ms(s.wall / s.iterations) : std::string("-")) << " per iteration\n\n";
  std::snprintf(line, sizeof line, "%-12s %14s %14s %14s %14s %6s %6s\n", "node", "computing", "waiting",
                "communicating", "other", "sent", "recv");
  os << line;
  for (std::size_t n = 0; n < s.nodes.size(); ++n) {
    const node_time& t = s.nodes[n];
    auto cell = [&](std::int64_t v) {
      char c[40];
      std::snprintf(c, sizeof c, "%8.2f %s", static_cast<double>(v) / 1e6, pct(v, s.wall).c_str());
      return std::string(c);
    };
    std::snprintf(line, sizeof line, "%-12s %14s %14s %14s %14s %6zu %6zu\n", node_name(static_cast<int>(n)).c_str(),
                  cell(t.compute).c_str(), cell(t.waiting).c_str(), cell(t.sending).c_str(), cell(t.other).c_str(),
                  t.sent, t.received);
    os << line;
  }
  os << "(milliseconds and share of the window)\n\ncompute by block (ms):";
  for (std::size_t b = 1; b < block_count; ++b) {
    std::int64_t total = 0;
    for (const auto& t : s.nodes) total += t.by_block[b];
    std::snprintf(line, sizeof line, "  %s %.2f", pr::to_string(static_cast<pr::span_block>(b)),
                  static_cast<double>(total) / 1e6);
    os << line;
  }
  std::snprintf(line, sizeof line, "\nachieved overlap: %.2f (serial sum of the layers' update times / wall time; "
                "%d layers could reach at most %d)\n", s.overlap, r.layers, r.layers);
  os << line;
  const critical_path& cp = s.recorded.path;
  os << "\ncritical path: " << ms(cp.length) << ", through " << cp.messages << " messages\n";
  for (std::size_t b = 1; b < block_count; ++b)
    if (cp.compute[b] > 0)
      os << "  compute " << pr::to_string(static_cast<pr::span_block>(b)) << ": " << ms(cp.compute[b]) << " "
         << pct(cp.compute[b], cp.length) << "\n";
  os << "  other work (driver, bookkeeping): " << ms(cp.other_work) << " " << pct(cp.other_work, cp.length) << "\n";
  os << "  sending: " << ms(cp.sending) << " " << pct(cp.sending, cp.length) << "\n";
  os << "  message latency: " << ms(cp.latency) << " " << pct(cp.latency, cp.length) << "\n";
  os << "  receiving: " << ms(cp.receiving) << " " << pct(cp.receiving, cp.length) << "\n";
  os << "  on the path by node:";
  for (std::size_t n = 0; n < cp.by_node.size(); ++n)
    if (cp.by_node[n] > 0) os << "  " << node_name(static_cast<int>(n)) << " " << pct(cp.by_node[n], cp.length);
  os << "\n";
  std::snprintf(line, sizeof line, "\nre-simulated from the trace's own timings: %s (recorded %s, %+.1f%%)\n",
                ms(s.recorded.wall).c_str(), ms(s.recorded.recorded_wall).c_str(),
                s.recorded.recorded_wall > 0 ? 100.0 * static_cast<double>(s.recorded.wall - s.recorded.recorded_wall) /
                                                   static_cast<double>(s.recorded.recorded_wall)
                                             : 0.0);
  os << line;
  return os.str();
}

std::string format_simulation(const sim_result& s) {
  std::ostringstream os;
  char line[256];
  os << "workers: " << s.workers << " (layers in contiguous blocks, the coordinator on its own host)\n";
  if (s.recorded_network) {
    os << "network: as recorded (each message's own latency)\n";
  } else {
    std::snprintf(line, sizeof line, "network between workers: latency %.1f us, bandwidth %s\n", s.latency_s * 1e6,
                  s.bandwidth_Bps > 0 ? (std::to_string(s.bandwidth_Bps / 1e9) + " GB/s").c_str() : "unlimited");
    os << line;
  }
  std::snprintf(line, sizeof line, "recorded median latency of awaited messages: %.1f us\n", s.estimated_latency_s * 1e6);
  os << line;
  os << "predicted wall time: " << ms(s.wall) << "\n";
  std::snprintf(line, sizeof line, "recorded wall time:  %s (prediction %+.1f%%)\n", ms(s.recorded_wall).c_str(),
                s.recorded_wall > 0 ? 100.0 * static_cast<double>(s.wall - s.recorded_wall) /
                                          static_cast<double>(s.recorded_wall)
                                    : 0.0);
  os << line;
  os << "critical path: " << s.path.messages << " messages, latency " << ms(s.path.latency) << ", waiting for a core "
     << ms(s.path.core_wait) << "\n";
  return os.str();
}

namespace {

double parse_number(const std::string& text, std::size_t& used) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  used = static_cast<std::size_t>(end - begin);
  if (used == 0 || !std::isfinite(v) || v < 0) throw std::invalid_argument("not a non-negative number: '" + text + "'");
  return v;
}

}  // namespace

double parse_duration_s(const std::string& text) {
  std::size_t used = 0;
  const double v = parse_number(text, used);
  const std::string unit = text.substr(used);
  if (unit.empty() || unit == "s") return v;
  if (unit == "ms") return v * 1e-3;
  if (unit == "us") return v * 1e-6;
  if (unit == "ns") return v * 1e-9;
  throw std::invalid_argument("unknown time unit '" + unit + "' in '" + text + "' (s, ms, us, ns)");
}

double parse_bandwidth_Bps(const std::string& text) {
  std::size_t used = 0;
  const double v = parse_number(text, used);
  std::string unit = text.substr(used);
  if (unit.size() > 2 && unit.compare(unit.size() - 2, 2, "/s") == 0) unit.resize(unit.size() - 2);
  double scale = 1;
  if (!unit.empty() && (unit[0] == 'k' || unit[0] == 'K')) scale = 1e3, unit.erase(0, 1);
  else if (!unit.empty() && unit[0] == 'M') scale = 1e6, unit.erase(0, 1);
  else if (!unit.empty() && unit[0] == 'G') scale = 1e9, unit.erase(0, 1);
  else if (!unit.empty() && unit[0] == 'T') scale = 1e12, unit.erase(0, 1);
  if (unit.empty() || unit == "B") return v * scale;
  if (unit == "b" || unit == "bit" || unit == "bps") return v * scale / 8;
  throw std::invalid_argument("unknown bandwidth unit in '" + text + "' (B/s, MB/s, GB/s, Gbit/s, Gb/s)");
}

}  // namespace radmm::tools
