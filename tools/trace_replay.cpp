#include "tools/trace_replay.hpp"

#include "worker/layer_machine.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <deque>
#include <optional>

namespace radmm::tools {

namespace pr = protocol;
using pr::msg_type;

namespace {

// The message a recorded send carried, with its matrices.
pr::message rebuild(const run_model& r, const traced_message& tm) {
  const pr::trace_send* s = r.send_of(tm);
  if (!s) throw trace_incomplete(describe(tm) + " was received but its send is not in the trace");
  pr::message m;
  m.version = s->version;
  m.type = s->type;
  m.sender = s->sender;
  m.receiver = s->receiver;
  m.iteration = s->iteration;
  m.batch = s->batch;
  m.count = s->count;
  m.flags = s->flags;
  m.text = s->text;
  for (const pr::trace_payload& p : s->payloads) {
    if (!p.data)
      throw trace_incomplete(describe(tm) + " was recorded without its payload bytes; record with --trace-payloads");
    m.payloads.push_back({p.kind, p.layer, pr::matrix_view(p.data)});
  }
  return m;
}

std::string hex_double(double x) {
  std::uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%.17g (0x%016" PRIx64 ")", x, bits);
  return buf;
}

// Compares a replayed message with the recorded one; empty when identical.
std::string difference(const pr::trace_send& rec, const pr::message& m, std::uint64_t& bytes_compared) {
  auto field = [](const char* name, auto a, auto b) {
    return std::string(name) + ": recorded " + std::to_string(a) + ", replayed " + std::to_string(b);
  };
  if (rec.type != m.type)
    return std::string("type: recorded ") + pr::to_string(rec.type) + ", replayed " + pr::to_string(m.type);
  if (rec.receiver != m.receiver) return field("receiver", rec.receiver, m.receiver);
  if (rec.version != m.version) return field("version", rec.version, m.version);
  if (rec.iteration != m.iteration) return field("iteration", rec.iteration, m.iteration);
  if (rec.batch != m.batch) return field("batch", rec.batch, m.batch);
  if (rec.count != m.count) return field("count", rec.count, m.count);
  if (rec.flags != m.flags) return field("flags", rec.flags, m.flags);
  if (rec.type != msg_type::bye && rec.text != m.text)
    return "text: recorded \"" + rec.text + "\", replayed \"" + m.text + "\"";
  if (rec.payloads.size() != m.payloads.size()) return field("payload count", rec.payloads.size(), m.payloads.size());
  for (std::size_t i = 0; i < m.payloads.size(); ++i) {
    const pr::trace_payload& a = rec.payloads[i];
    const pr::payload& b = m.payloads[i];
    const std::string which = std::string("payload ") + pr::to_string(a.kind) + "_" + std::to_string(a.layer);
    if (a.kind != b.kind || a.layer != b.layer)
      return "payload " + std::to_string(i) + ": recorded " + pr::to_string(a.kind) + "_" + std::to_string(a.layer) +
             ", replayed " + pr::to_string(b.kind) + "_" + std::to_string(b.layer);
    if (a.rows != b.matrix.rows() || a.cols != b.matrix.cols())
      return which + " shape: recorded " + std::to_string(a.rows) + "x" + std::to_string(a.cols) + ", replayed " +
             std::to_string(b.matrix.rows()) + "x" + std::to_string(b.matrix.cols());
    if (!a.data) throw trace_incomplete("the trace has no payload bytes; record with --trace-payloads");
    const double* x = a.data->data();
    const double* y = b.matrix.data();
    const auto n = static_cast<std::size_t>(a.rows * a.cols);
    if (n > 0 && std::memcmp(x, y, n * sizeof(double)) != 0) {
      for (std::size_t j = 0; j < n; ++j)
        if (std::memcmp(x + j, y + j, sizeof(double)) != 0) {
          const auto row = static_cast<long long>(j % static_cast<std::size_t>(a.rows));
          const auto col = static_cast<long long>(j / static_cast<std::size_t>(a.rows));
          return which + " differs at (" + std::to_string(row) + ", " + std::to_string(col) + "): recorded " +
                 hex_double(x[j]) + ", replayed " + hex_double(y[j]);
        }
    }
    bytes_compared += n * sizeof(double);
  }
  return {};
}

// What node `w` sent, in order, as the machine would have (no HELLO).
std::vector<const traced_message*> recorded_output(const run_model& r, int w) {
  std::vector<const traced_message*> out;
  for (const node_event& ev : r.events[static_cast<std::size_t>(w)])
    if (ev.kind == event_kind::send) {
      const traced_message& m = r.messages[ev.index];
      if (m.type != msg_type::hello) out.push_back(&m);
    }
  return out;
}

// Compares the machine outputs of one layer as they are produced.
class output_checker {
 public:
  output_checker(const run_model& r, int w) : r_(r), w_(w), expected_(recorded_output(r, w)) {}

  // False (with `result` filled) at the first divergence.
  bool check(const pr::message& m, replay_result& result) {
    if (next_ >= expected_.size()) {
      result.identical = false;
      result.report = node_name(w_) + ": the replay sent " + pr::to_string(m.type) + " to " + node_name(m.receiver) +
                      " as its message #" + std::to_string(next_ + 1) + ", but the recording ends after " +
                      std::to_string(expected_.size());
      return false;
    }
    const traced_message& tm = *expected_[next_];
    const std::string diff = difference(*r_.send_of(tm), m, result.payload_bytes_compared);
    ++next_;
    ++result.messages_compared;
    if (!diff.empty()) {
      result.identical = false;
      result.report = node_name(w_) + ": message #" + std::to_string(next_) + ", " + describe(tm) + ": " + diff;
      return false;
    }
    return true;
  }

  // The machine failed with `what`: fine when that is what was recorded.
  bool check_error(const std::string& what, replay_result& result) {
    if (next_ < expected_.size() && expected_[next_]->type == msg_type::error &&
        r_.send_of(*expected_[next_])->text == what) {
      ++next_;
      ++result.messages_compared;
      return true;
    }
    result.identical = false;
    result.report = node_name(w_) + ": the replayed machine failed: " + what +
                    (next_ < expected_.size() ? "; the recording continues with " + describe(*expected_[next_])
                                              : std::string("; the recording has no such error"));
    return false;
  }

  bool done(replay_result& result) const {
    if (next_ == expected_.size()) return true;
    result.identical = false;
    result.report = node_name(w_) + ": the replay stopped after " + std::to_string(next_) +
                    " messages; the recording continues with " + describe(*expected_[next_]);
    return false;
  }

  std::size_t compared() const { return next_; }
  bool reproduced_error() const { return next_ > 0 && expected_[next_ - 1]->type == msg_type::error; }

 private:
  const run_model& r_;
  int w_;
  std::vector<const traced_message*> expected_;
  std::size_t next_ = 0;
};

void check_payloads(const run_model& r) {
  if (!r.payloads)
    throw trace_incomplete("replay needs payload bytes, and this trace was recorded without them "
                           "(radmm train ... --trace FILE --trace-payloads)");
}

}  // namespace

replay_result replay_layer(const run_model& r, int layer) {
  check_payloads(r);
  if (layer < 1 || layer > r.layers)
    throw std::invalid_argument("--layer " + std::to_string(layer) + ": the trace has layers 1.." +
                                std::to_string(r.layers));
  replay_result result;
  worker::layer_machine machine(layer);
  output_checker out(r, layer);
  std::size_t fed = 0;
  for (const node_event& ev : r.events[static_cast<std::size_t>(layer)]) {
    if (ev.kind != event_kind::receive) continue;
    const traced_message& tm = r.messages[ev.index];
    const pr::message in = rebuild(r, tm);
    ++fed;
    std::vector<pr::message> sent;
    try {
      sent = machine.handle(in);
    } catch (const std::exception& e) {
      if (!out.check_error(e.what(), result)) return result;
      break;
    }
    for (const pr::message& m : sent)
      if (!out.check(m, result)) return result;
  }
  if (!out.done(result)) return result;
  result.report = node_name(layer) + ": fed " + std::to_string(fed) + " recorded messages; all " +
                  std::to_string(result.messages_compared) + " messages it sent are identical (" +
                  std::to_string(result.payload_bytes_compared) + " payload bytes compared)" +
                  (out.reproduced_error() ? "; the recorded error was reproduced" : "");
  return result;
}

replay_result replay_run(const run_model& r) {
  check_payloads(r);
  const int N = r.layers;
  if (N < 1) throw trace_incomplete("the trace has no layers");
  replay_result result;
  std::vector<std::optional<worker::layer_machine>> machines(static_cast<std::size_t>(N) + 1);
  std::vector<std::optional<output_checker>> checkers(static_cast<std::size_t>(N) + 1);
  for (int i = 1; i <= N; ++i) {
    machines[static_cast<std::size_t>(i)].emplace(i);
    checkers[static_cast<std::size_t>(i)].emplace(r, i);
  }
  // The coordinator's script: its sends, gated on the receipts before them.
  const auto& script = r.events[0];
  std::size_t cursor = 0;
  std::vector<std::deque<pr::message>> inbox(static_cast<std::size_t>(N) + 1);
  for (int i = 1; i <= N; ++i) {
    pr::message hello;  // the driver's, not the machine's: synthesised
    hello.type = msg_type::hello;
    hello.sender = i;
    hello.receiver = 0;
    inbox[static_cast<std::size_t>(i)].push_back(hello);
  }
  std::deque<pr::message> queue;
  std::vector<pr::message> final_W(static_cast<std::size_t>(N) + 1);
  std::vector<bool> failed(static_cast<std::size_t>(N) + 1, false);
  for (;;) {
    // Let the coordinator go as far as what it has received allows.
    while (cursor < script.size()) {
      const node_event& ev = script[cursor];
      if (ev.kind == event_kind::span) {
        ++cursor;
        continue;
      }
      const traced_message& tm = r.messages[ev.index];
      if (ev.kind == event_kind::send) {
        queue.push_back(rebuild(r, tm));
      } else {
        if (tm.sender < 1 || tm.sender > N) throw trace_incomplete(describe(tm) + " comes from outside the run");
        auto& box = inbox[static_cast<std::size_t>(tm.sender)];
        if (box.empty()) break;
        if (box.front().type != tm.type) {
          result.identical = false;
          result.report = "the coordinator expected " + describe(tm) + " but " + node_name(tm.sender) +
                          " sent it " + pr::to_string(box.front().type);
          return result;
        }
        box.pop_front();
      }
      ++cursor;
    }
    if (queue.empty()) break;
    pr::message m = std::move(queue.front());
    queue.pop_front();
    if (m.receiver == 0) {
      if (m.type == msg_type::sync && m.find(pr::payload_kind::W)) final_W[static_cast<std::size_t>(m.sender)] = m;
      inbox[static_cast<std::size_t>(m.sender)].push_back(std::move(m));
      continue;
    }
    if (m.receiver < 1 || m.receiver > N) throw trace_incomplete("a message to node " + std::to_string(m.receiver));
    const auto w = static_cast<std::size_t>(m.receiver);
    if (failed[w]) continue;
    std::vector<pr::message> sent;
    try {
      sent = machines[w]->handle(m);
    } catch (const std::exception& e) {
      if (!checkers[w]->check_error(e.what(), result)) return result;
      failed[w] = true;
      pr::message err;
      err.type = msg_type::error;
      err.sender = m.receiver;
      err.receiver = 0;
      err.text = e.what();
      inbox[w].push_back(err);
      continue;
    }
    for (pr::message& o : sent) {
      if (!checkers[w]->check(o, result)) return result;
      queue.push_back(std::move(o));
    }
  }
  if (cursor < script.size()) {
    result.identical = false;
    result.report = "the replayed run stopped: the coordinator waits for " + describe(r.messages[script[cursor].index]);
    return result;
  }
  for (int i = 1; i <= N; ++i)
    if (!checkers[static_cast<std::size_t>(i)]->done(result)) return result;
  int weights = 0;
  for (int i = 1; i <= N; ++i) weights += final_W[static_cast<std::size_t>(i)].find(pr::payload_kind::W) ? 1 : 0;
  result.report = "whole run replayed in one process: " + std::to_string(result.messages_compared) +
                  " messages from " + std::to_string(N) + " layers identical (" +
                  std::to_string(result.payload_bytes_compared) + " payload bytes compared); final weights of " +
                  std::to_string(weights) + " of " + std::to_string(N) + " layers identical bit for bit";
  return result;
}

}  // namespace radmm::tools
