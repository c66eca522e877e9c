#include "worker/driver.hpp"

#include "core/checkpoint.hpp"
#include "core/npy.hpp"

#include <fstream>

#include <cstdio>
#include <sstream>

namespace radmm::worker {

std::string driver_stats::to_text() const {
  std::ostringstream os;
  os << "compute_ns=" << compute_ns << " wait_ns=" << wait_ns << " send_ns=" << send_ns
     << " messages_in=" << messages_in << " messages_out=" << messages_out << " block_bytes=" << block_bytes
     << " peak_rss_kb=" << peak_rss_kb;
  return os.str();
}

driver_stats driver_stats::from_text(const std::string& text) {
  driver_stats s;
  std::istringstream is(text);
  for (std::string field; is >> field;) {
    const auto eq = field.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = field.substr(0, eq);
    const long long v = std::strtoll(field.c_str() + eq + 1, nullptr, 10);
    if (key == "compute_ns") s.compute_ns = v;
    else if (key == "wait_ns") s.wait_ns = v;
    else if (key == "send_ns") s.send_ns = v;
    else if (key == "messages_in") s.messages_in = v;
    else if (key == "messages_out") s.messages_out = v;
    else if (key == "block_bytes") s.block_bytes = static_cast<std::size_t>(v);
    else if (key == "peak_rss_kb") s.peak_rss_kb = static_cast<long>(v);
  }
  return s;
}

namespace {

// This process's own peak resident set (VmHWM). getrusage's ru_maxrss is
// inherited across fork and exec on Linux, so a worker would report the
// coordinator's size at spawn.
long peak_rss_kb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return 0;
}

// INIT may say "restore_from=FILE": this layer's block of a checkpoint.
void restore_if_asked(layer_machine& machine, const std::string& init_text) {
  const std::string key = "restore_from=";
  const auto at = init_text.find(key);
  if (at == std::string::npos) return;
  const auto end = init_text.find('\n', at);
  const std::string path = init_text.substr(at + key.size(), end == std::string::npos ? std::string::npos : end - at - key.size());
  machine.restore_block(core::decode_block(core::read_file(path), path));
}

// Writes this layer's block into the checkpoint directory named by the STEP
// (atomically: temporary file, fsync, rename) and returns the SYNC's text.
std::string write_checkpoint(const layer_machine& machine, const std::string& dir) {
  if (dir.empty()) throw protocol::protocol_error("checkpoint STEP without a directory");
  const std::string name = "layer-" + std::to_string(machine.self()) + ".bin";
  const std::string bytes = core::encode_block(machine.save_block());
  core::write_file_atomic(dir + "/" + name, bytes);
  char sum[32];
  std::snprintf(sum, sizeof sum, "%016llx", static_cast<unsigned long long>(core::fnv1a64(bytes)));
  return "file=" + name + " checksum=" + sum + " bytes=" + std::to_string(bytes.size());
}

}  // namespace

driver_stats run_machine(protocol::transport& t, layer_machine& machine, const driver_options& opt) {
  using clock = std::chrono::steady_clock;
  auto ns = [](clock::duration d) { return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(); };
  driver_stats stats;
  std::string step_text;  // the STEP in progress names the checkpoint directory
  auto report = [&](const std::string& what) {
    try {
      protocol::message err;
      err.type = protocol::msg_type::error;
      err.sender = machine.self();
      err.receiver = protocol::coordinator_id;
      err.iteration = machine.iteration();
      err.text = what;
      t.send(err);
    } catch (...) {
      // The coordinator may be the one that failed; nothing more to do.
    }
  };
  try {
    protocol::message hello;
    hello.type = protocol::msg_type::hello;
    hello.sender = machine.self();
    hello.receiver = protocol::coordinator_id;
    t.send(hello);
    auto last_message = clock::now();
    while (!machine.finished()) {
      const auto t0 = clock::now();
      std::optional<protocol::message> m = t.receive(opt.poll);
      const auto t1 = clock::now();
      stats.wait_ns += ns(t1 - t0);
      if (!m) {
        if (opt.still_wanted && !opt.still_wanted())
          throw protocol::io_error("layer " + std::to_string(machine.self()) + ": the coordinator is gone");
        if (t1 - last_message > opt.idle_limit)
          throw protocol::timeout_error("layer " + std::to_string(machine.self()) + ": no message for " +
                                        std::to_string(opt.idle_limit.count()) + " ms");
        continue;
      }
      last_message = t1;
      ++stats.messages_in;
      if (m->type == protocol::msg_type::step) step_text = m->text;
      std::vector<protocol::message> out = machine.handle(*m);
      if (m->type == protocol::msg_type::init) restore_if_asked(machine, m->text);
      const auto t2 = clock::now();
      stats.compute_ns += ns(t2 - t1);
      for (protocol::message& o : out) {
        if (o.type == protocol::msg_type::sync && (o.flags & protocol::step_flags::checkpoint))
          o.text = write_checkpoint(machine, step_text);
        if (o.type == protocol::msg_type::bye) {
          // The last word: where this worker's time and memory went.
          stats.block_bytes = machine.block_bytes();
          stats.peak_rss_kb = peak_rss_kb();
          o.text = stats.to_text();
        }
        t.send(o);
        ++stats.messages_out;
      }
      stats.send_ns += ns(clock::now() - t2);
    }
  } catch (const std::exception& e) {
    report(e.what());
    throw;
  }
  return stats;
}

}  // namespace radmm::worker
