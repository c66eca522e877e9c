#include "tools/trace_check.hpp"

#include <algorithm>

namespace radmm::tools {

namespace pr = protocol;
using pr::msg_type;

namespace {

struct expected_neighbour {
  std::int64_t k;
  bool forward_init;
  std::int64_t batch;
};

struct step_info {
  std::int64_t batch, k0, count;
  bool reset;
  std::size_t ticks_through = 0, tocks_through = 0;  // expected totals once this STEP is done
};

std::string type_name(msg_type t) { return pr::to_string(t); }

bool role_allowed(const traced_message& m, int N) {
  if (m.sender == 0)
    return m.receiver >= 1 && (m.type == msg_type::init || m.type == msg_type::step || m.type == msg_type::quit);
  if (m.receiver == 0)
    return m.type == msg_type::hello || m.type == msg_type::ready || m.type == msg_type::sync ||
           m.type == msg_type::bye || m.type == msg_type::error;
  if (m.type == msg_type::tick) return m.receiver == m.sender + 1 && m.receiver <= N;
  if (m.type == msg_type::tock) return m.receiver == m.sender - 1 && m.receiver >= 1;
  return false;
}

}  // namespace

std::vector<violation> check_trace(const run_model& r) {
  std::vector<violation> out;
  auto add = [&](std::size_t seq, std::string what) { out.push_back({seq, std::move(what)}); };
  const std::size_t end_seq = r.messages.size();
  const int N = r.layers;
  const auto& d = r.data;

  for (std::size_t s = 0; s < d.streams.size(); ++s)
    if (d.streams[s].protocol_version != pr::protocol_version)
      add(0, "stream " + std::to_string(s) + " (pid " + std::to_string(d.streams[s].pid) + ") speaks protocol version " +
                 std::to_string(d.streams[s].protocol_version) + "; this build speaks " +
                 std::to_string(pr::protocol_version));

  // Message by message: versions, pairing, roles, errors.
  for (const traced_message& m : r.messages) {
    const pr::trace_send* s = r.send_of(m);
    const pr::trace_receive* x = m.receive ? &d.receives[*m.receive] : nullptr;
    if ((s && s->version != pr::protocol_version) || (x && x->version != pr::protocol_version))
      add(m.seq, describe(m) + " carries protocol version " + std::to_string(s ? s->version : x->version) +
                     "; this build speaks " + std::to_string(pr::protocol_version));
    if (!s)
      add(m.seq, node_name(m.receiver) + " received " + describe(m) + ", message #" +
                     std::to_string(m.channel_seq + 1) + " on that channel, which " + node_name(m.sender) +
                     " never sent");
    if (s && x && (x->type != s->type || x->iteration != s->iteration || x->batch != s->batch))
      add(m.seq, node_name(m.receiver) + " received " + type_name(x->type) + " k=" + std::to_string(x->iteration) +
                     " as message #" + std::to_string(m.channel_seq + 1) + " from " + node_name(m.sender) +
                     ", which sent " + describe(m) + " there: the channel lost its order");
    if (m.sender == m.receiver) add(m.seq, describe(m) + " is addressed to its sender");
    else if (!role_allowed(m, N)) add(m.seq, describe(m) + ": the protocol has no such message");
    if (m.type == msg_type::error)
      add(m.seq, node_name(m.sender) + " reported an error: " + (s ? s->text : std::string("(text not recorded)")));
  }

  // The coordinator: HELLO -> INIT -> READY -> STEPs closed by SYNCs -> QUIT -> BYE.
  const auto W = static_cast<std::size_t>(N) + 1;
  std::vector<bool> hello(W), init(W), ready(W), quit(W), bye(W), step_sent(W), sync_got(W);
  std::int64_t cur_batch = -1, step_k0 = 0, step_count = 0;
  bool step_open = false;
  int quits = 0;
  auto missing_sync = [&]() -> int {
    for (int w = 1; w <= N; ++w)
      if (!sync_got[static_cast<std::size_t>(w)]) return w;
    return 0;
  };
  if (N >= 1)
    for (const node_event& ev : r.events[0]) {
      if (ev.kind == event_kind::span) continue;
      const traced_message& m = r.messages[ev.index];
      if (ev.kind == event_kind::send) {
        if (quits == N) add(m.seq, "the coordinator sent " + describe(m) + " after QUIT to every worker");
        const int w = m.receiver;
        if (w < 1 || w > N) continue;
        const auto wi = static_cast<std::size_t>(w);
        if (quit[wi] && quits < N) add(m.seq, "the coordinator sent " + describe(m) + " after that worker's QUIT");
        const pr::trace_send* s = r.send_of(m);
        switch (m.type) {
          case msg_type::init:
            if (!hello[wi]) add(m.seq, describe(m) + " before " + node_name(w) + "'s HELLO");
            if (init[wi]) add(m.seq, describe(m) + " is a second INIT");
            init[wi] = true;
            break;
          case msg_type::step:
            if (!ready[wi]) add(m.seq, describe(m) + " before " + node_name(w) + "'s READY");
            if (m.batch != cur_batch || !step_open) {
              if (step_open)
                add(m.seq, describe(m) + " starts before STEP " + std::to_string(cur_batch) + " was closed by " +
                               node_name(missing_sync()) + "'s SYNC");
              if (m.batch != cur_batch + 1)
                add(m.seq, describe(m) + ": STEP " + std::to_string(m.batch) + " follows STEP " +
                               std::to_string(cur_batch));
              cur_batch = m.batch;
              std::fill(step_sent.begin(), step_sent.end(), false);
              std::fill(sync_got.begin(), sync_got.end(), false);
              step_open = true;
              step_k0 = m.iteration;
              step_count = s ? s->count : 0;
            } else if (step_sent[wi]) {
              add(m.seq, describe(m) + " is a second STEP " + std::to_string(m.batch) + " to that worker");
            } else if (m.iteration != step_k0 || (s && s->count != step_count)) {
              add(m.seq, describe(m) + " differs from the other workers' STEP " + std::to_string(m.batch));
            }
            step_sent[wi] = true;
            break;
          case msg_type::quit:
            if (step_open)
              add(m.seq, describe(m) + " while STEP " + std::to_string(cur_batch) + " is not closed by " +
                             node_name(missing_sync()) + "'s SYNC");
            if (!quit[wi]) ++quits;
            quit[wi] = true;
            break;
          default: break;
        }
      } else {
        const int w = m.sender;
        if (w < 1 || w > N) continue;
        const auto wi = static_cast<std::size_t>(w);
        switch (m.type) {
          case msg_type::hello:
            if (hello[wi]) add(m.seq, describe(m) + " is a second HELLO");
            hello[wi] = true;
            break;
          case msg_type::ready:
            if (!init[wi]) add(m.seq, describe(m) + " before that worker's INIT");
            ready[wi] = true;
            break;
          case msg_type::sync:
            if (!step_open || m.batch != cur_batch || !step_sent[wi]) {
              add(m.seq, describe(m) + " answers no open STEP");
            } else if (sync_got[wi]) {
              add(m.seq, describe(m) + " is a second SYNC for STEP " + std::to_string(cur_batch));
            } else {
              sync_got[wi] = true;
              if (m.iteration != step_k0 + step_count)
                add(m.seq, describe(m) + " reports iteration " + std::to_string(m.iteration) + "; STEP " +
                               std::to_string(cur_batch) + " ends at " + std::to_string(step_k0 + step_count));
              if (missing_sync() == 0) step_open = false;
            }
            break;
          case msg_type::bye:
            if (!quit[wi]) add(m.seq, describe(m) + " before that worker's QUIT");
            bye[wi] = true;
            break;
          default: break;
        }
      }
    }

  // Each worker: the TICKs and TOCKs it consumes, its SYNCs, and QUIT.
  for (int w = 1; w <= N; ++w) {
    std::vector<step_info> steps;
    std::vector<expected_neighbour> ticks, tocks;
    for (const traced_message& m : r.messages) {
      if (m.type != msg_type::step || m.sender != 0 || m.receiver != w) continue;
      const pr::trace_send* s = r.send_of(m);
      if (!s) continue;
      step_info st{m.batch, m.iteration, s->count, (s->flags & pr::step_flags::reset_state) != 0};
      // A STEP can only call for as many TICKs and TOCKs as the trace holds
      // messages; a larger count is damage, not a list to build.
      if (st.count < 0 || static_cast<std::uint64_t>(st.count) > r.messages.size()) {
        add(m.seq, describe(m) + " asks for " + std::to_string(st.count) + " updates, which cannot be");
        st.count = 0;
      }
      if (w > 1) {
        if (st.reset) ticks.push_back({st.k0, true, st.batch});
        for (std::int64_t j = 1; j <= st.count; ++j) ticks.push_back({st.k0 + j, false, st.batch});
      }
      if (w < N)
        for (std::int64_t j = 1; j <= st.count; ++j) tocks.push_back({st.k0 + j, false, st.batch});
      st.ticks_through = ticks.size();
      st.tocks_through = tocks.size();
      steps.push_back(st);
    }
    std::size_t ticks_seen = 0, tocks_seen = 0, steps_seen = 0;
    bool got_quit = false, sent_bye = false;
    auto consume = [&](const traced_message& m, std::vector<expected_neighbour>& list, std::size_t& seen,
                       const char* what, int from) {
      if (m.sender != from) return;  // a role violation, reported above
      const pr::trace_send* s = r.send_of(m);
      if (seen >= list.size()) {
        add(m.seq, node_name(w) + " consumed " + describe(m) + ", which no STEP it was given calls for");
      } else {
        const expected_neighbour& e = list[seen];
        const bool fi = s && (s->flags & pr::tick_flags::forward_init) != 0;
        if (m.iteration != e.k || m.batch != e.batch || (s && m.type == msg_type::tick && fi != e.forward_init))
          add(m.seq, node_name(w) + " consumed " + describe(m) + "; STEP " + std::to_string(e.batch) + " calls for " +
                         (e.forward_init ? "the forward-pass " : "") + what + " k=" + std::to_string(e.k) +
                         " from " + node_name(from) + " next");
      }
      ++seen;
    };
    for (const node_event& ev : r.events[static_cast<std::size_t>(w)]) {
      if (ev.kind == event_kind::span) continue;
      const traced_message& m = r.messages[ev.index];
      if (ev.kind == event_kind::receive) {
        if (got_quit) add(m.seq, node_name(w) + " received " + describe(m) + " after QUIT");
        switch (m.type) {
          case msg_type::tick: consume(m, ticks, ticks_seen, "TICK", w - 1); break;
          case msg_type::tock: consume(m, tocks, tocks_seen, "TOCK", w + 1); break;
          case msg_type::step: ++steps_seen; break;
          case msg_type::quit: got_quit = true; break;
          default: break;
        }
      } else {
        if (got_quit) {
          if (m.type != msg_type::bye || sent_bye) add(m.seq, node_name(w) + " sent " + describe(m) + " after QUIT");
          sent_bye = sent_bye || m.type == msg_type::bye;
        }
        if (m.type == msg_type::sync) {
          std::size_t j = 0;
          while (j < steps.size() && j < steps_seen && steps[j].batch != m.batch) ++j;
          if (j >= steps.size() || j >= steps_seen) {
            add(m.seq, describe(m) + " closes a STEP that " + node_name(w) + " never received");
          } else if (ticks_seen < steps[j].ticks_through) {
            const auto& e = ticks[ticks_seen];
            add(m.seq, describe(m) + " before " + node_name(w) + " consumed TICK k=" + std::to_string(e.k) + " from " +
                           node_name(w - 1));
          } else if (tocks_seen < steps[j].tocks_through) {
            const auto& e = tocks[tocks_seen];
            add(m.seq, describe(m) + " before " + node_name(w) + " consumed TOCK k=" + std::to_string(e.k) + " from " +
                           node_name(w + 1));
          }
        }
      }
    }
  }

  // The end of the run.
  if (N >= 1 && quits < N) {
    std::string why = "the trace ends before QUIT reached every worker";
    if (d.truncated) why += " (the file is truncated: " + d.truncation + ")";
    add(end_seq, why);
  } else if (N >= 1) {
    bool all_ended = true;
    for (const auto& s : d.streams) all_ended = all_ended && s.ended;
    if (all_ended && !d.truncated) {
      for (int w = 1; w <= N; ++w)
        if (!bye[static_cast<std::size_t>(w)]) add(end_seq, node_name(w) + " never answered QUIT with BYE");
      for (const traced_message& m : r.messages)
        if (m.send && !m.receive) add(m.seq, describe(m) + " was sent but never received");
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const violation& a, const violation& b) { return a.seq < b.seq; });
  return out;
}

}  // namespace radmm::tools
