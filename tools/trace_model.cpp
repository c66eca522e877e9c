#include "tools/trace_model.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>
#include <tuple>

namespace radmm::tools {

namespace pr = protocol;

std::string node_name(pr::node_id n) { return n == 0 ? "coordinator" : "layer " + std::to_string(n); }

std::string describe(const traced_message& m) {
  std::string s = "seq " + std::to_string(m.seq) + " (" + pr::to_string(m.type) + " " + node_name(m.sender) +
                  " -> " + node_name(m.receiver);
  if (m.type == pr::msg_type::tick || m.type == pr::msg_type::tock || m.type == pr::msg_type::step ||
      m.type == pr::msg_type::sync)
    s += ", k=" + std::to_string(m.iteration);
  if (m.batch >= 0) s += ", batch " + std::to_string(m.batch);
  return s + ")";
}

run_model build_model(pr::trace_data data) {
  run_model r;
  r.data = std::move(data);
  const pr::trace_data& d = r.data;

  // Clock alignment: streams of one boot share steady_clock; otherwise go
  // through each stream's (steady, system) pair.
  bool same_boot = !d.streams.empty() && !d.streams[0].boot_id.empty();
  for (const auto& s : d.streams) same_boot = same_boot && s.boot_id == d.streams[0].boot_id;
  if (!same_boot && d.streams.size() > 1)
    r.notes.push_back("streams come from different boots or hosts: aligned through the system clock");
  std::vector<std::int64_t> offset(d.streams.size(), 0);
  for (std::size_t s = 0; s < d.streams.size(); ++s)
    if (!same_boot) offset[s] = d.streams[s].system_ns - d.streams[s].steady_ns;
  std::int64_t base = std::numeric_limits<std::int64_t>::max();
  for (std::size_t s = 0; s < d.streams.size(); ++s) base = std::min(base, d.streams[s].steady_ns + offset[s]);
  for (const auto& x : d.sends) base = std::min(base, x.t_begin + offset[x.stream]);
  for (const auto& x : d.receives) base = std::min(base, x.t_wait + offset[x.stream]);
  for (const auto& x : d.spans) base = std::min(base, x.t_begin + offset[x.stream]);
  if (base == std::numeric_limits<std::int64_t>::max()) base = 0;
  auto at = [&](std::size_t stream, std::int64_t t) { return t + offset[stream] - base; };

  int max_node = 0;
  for (const auto& s : d.streams) r.layers = std::max(r.layers, static_cast<int>(s.layers));
  for (const auto& x : d.sends) max_node = std::max({max_node, x.sender, x.receiver});
  for (const auto& x : d.receives) max_node = std::max({max_node, x.sender, x.receiver});
  for (const auto& x : d.spans) max_node = std::max(max_node, x.node);
  r.layers = std::max(r.layers, max_node);
  r.payloads = !d.streams.empty();
  for (const auto& s : d.streams) r.payloads = r.payloads && s.payloads;

  // Pair sends and receives on (sender, receiver, channel sequence number).
  using key = std::tuple<pr::node_id, pr::node_id, std::uint64_t>;
  std::map<key, std::size_t> send_at;
  std::vector<traced_message> msgs;
  for (std::size_t i = 0; i < d.sends.size(); ++i) {
    const auto& s = d.sends[i];
    traced_message m;
    m.send = i;
    m.type = s.type;
    m.sender = s.sender;
    m.receiver = s.receiver;
    m.channel_seq = s.channel_seq;
    m.iteration = s.iteration;
    m.batch = s.batch;
    m.t_send_begin = at(s.stream, s.t_begin);
    m.t_send_end = at(s.stream, s.t_end);
    if (!send_at.emplace(key{s.sender, s.receiver, s.channel_seq}, msgs.size()).second)
      r.notes.push_back("two sends of message #" + std::to_string(s.channel_seq) + " from " + node_name(s.sender) +
                        " to " + node_name(s.receiver) + " (the trace holds a node twice?)");
    msgs.push_back(m);
  }
  std::vector<std::size_t> receive_msg(d.receives.size());
  for (std::size_t i = 0; i < d.receives.size(); ++i) {
    const auto& x = d.receives[i];
    auto it = send_at.find(key{x.sender, x.receiver, x.channel_seq});
    std::size_t mi;
    if (it == send_at.end() || msgs[it->second].receive) {
      traced_message m;
      m.type = x.type;
      m.sender = x.sender;
      m.receiver = x.receiver;
      m.channel_seq = x.channel_seq;
      m.iteration = x.iteration;
      m.batch = x.batch;
      mi = msgs.size();
      msgs.push_back(m);
    } else {
      mi = it->second;
    }
    msgs[mi].receive = i;
    msgs[mi].t_wait = at(x.stream, x.t_wait);
    msgs[mi].t_receive = at(x.stream, x.t_return);
    receive_msg[i] = mi;
  }
  // Sequence numbers: by send time (receive time for a receive without a send),
  // ties in record order.
  std::vector<std::size_t> rank(msgs.size());
  std::iota(rank.begin(), rank.end(), 0);
  auto when = [&](const traced_message& m) { return m.send ? m.t_send_begin : m.t_receive; };
  std::stable_sort(rank.begin(), rank.end(), [&](std::size_t a, std::size_t b) { return when(msgs[a]) < when(msgs[b]); });
  std::vector<std::size_t> seq_of(msgs.size());
  r.messages.resize(msgs.size());
  for (std::size_t s = 0; s < rank.size(); ++s) {
    seq_of[rank[s]] = s;
    r.messages[s] = msgs[rank[s]];
    r.messages[s].seq = s;
  }
  r.message_of_send.resize(d.sends.size());
  for (std::size_t i = 0; i < d.sends.size(); ++i) r.message_of_send[i] = seq_of[i];  // sends were pushed first
  r.message_of_receive.resize(d.receives.size());
  for (std::size_t i = 0; i < d.receives.size(); ++i) r.message_of_receive[i] = seq_of[receive_msg[i]];

  r.spans.reserve(d.spans.size());
  for (const auto& s : d.spans)
    r.spans.push_back({s.node, s.block, s.depth, s.iteration, at(s.stream, s.t_begin), at(s.stream, s.t_end)});

  // Each node's events in program order: a node's records are written in the
  // order it did things (spans at their end, so those are placed by start).
  r.events.assign(static_cast<std::size_t>(r.nodes()), {});
  std::vector<std::vector<node_event>> node_spans(static_cast<std::size_t>(r.nodes()));
  for (const auto& [kind, index] : d.order) {
    switch (kind) {
      case pr::trace_record_kind::send: {
        const auto& m = r.messages[r.message_of_send[index]];
        r.events[static_cast<std::size_t>(m.sender)].push_back({event_kind::send, m.seq, m.t_send_begin, m.t_send_end});
        break;
      }
      case pr::trace_record_kind::receive: {
        const auto& m = r.messages[r.message_of_receive[index]];
        r.events[static_cast<std::size_t>(m.receiver)].push_back({event_kind::receive, m.seq, m.t_wait, m.t_receive});
        break;
      }
      case pr::trace_record_kind::span: {
        const auto& s = r.spans[index];
        node_spans[static_cast<std::size_t>(s.node)].push_back({event_kind::span, index, s.t_begin, s.t_end});
        break;
      }
      default: break;
    }
  }
  // Spans are written at their end: merge them in by start time. Messages keep
  // record order, which is exactly the node's program order.
  for (std::size_t n = 0; n < r.events.size(); ++n) {
    auto& sp = node_spans[n];
    std::stable_sort(sp.begin(), sp.end(), [](const node_event& a, const node_event& b) { return a.t_begin < b.t_begin; });
    std::vector<node_event> merged;
    merged.reserve(r.events[n].size() + sp.size());
    std::size_t j = 0;
    for (const node_event& e : r.events[n]) {
      while (j < sp.size() && sp[j].t_begin < e.t_begin) merged.push_back(sp[j++]);
      merged.push_back(e);
    }
    while (j < sp.size()) merged.push_back(sp[j++]);
    r.events[n] = std::move(merged);
  }

  for (const auto& m : r.messages) r.t_end = std::max({r.t_end, m.t_send_end, m.t_receive});
  for (const auto& s : r.spans) r.t_end = std::max(r.t_end, s.t_end);
  r.run_begin = -1;
  r.run_end = -1;
  for (const auto& m : r.messages) {
    if (m.sender == 0 && m.type == pr::msg_type::step && m.send && r.run_begin < 0) r.run_begin = m.t_send_begin;
    if (m.receiver == 0 && m.type == pr::msg_type::sync && m.receive) r.run_end = std::max(r.run_end, m.t_receive);
  }
  if (r.run_begin < 0 || r.run_end <= r.run_begin) {
    r.run_begin = 0;
    r.run_end = r.t_end;
  }
  return r;
}

}  // namespace radmm::tools
