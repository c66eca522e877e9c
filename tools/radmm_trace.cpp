// radmm-trace: reads, checks, replays, draws and simulates the protocol trace
// of a parallel run (`radmm train --parallel ... --trace FILE`). The exit codes
// are part of the interface (scripts and tests rely on them); see usage().
#include "protocol/trace.hpp"
#include "tools/trace_check.hpp"
#include "tools/trace_export.hpp"
#include "tools/trace_model.hpp"
#include "tools/trace_record.hpp"
#include "tools/trace_replay.hpp"
#include "tools/trace_timing.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <functional>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace {

using namespace radmm;
namespace pr = protocol;

namespace exit_code {
constexpr int ok = 0;
constexpr int found = 1;       // check: a violation; replay: a divergence
constexpr int usage = 2;
constexpr int bad_trace = 3;   // missing, not a trace, wrong version, corrupt
constexpr int incomplete = 4;  // the trace lacks what the command needs
constexpr int failed = 5;      // an output could not be written, a recorded run failed
}  // namespace exit_code

const char* usage_text =
    "radmm-trace: reads, checks, replays, draws and simulates a radmm protocol trace\n"
    "(recorded by `radmm train --parallel inproc|shm --trace FILE [--trace-payloads]`).\n"
    "\n"
    "usage:\n"
    "  radmm-trace info FILE                  summary: streams, nodes, messages, spans, duration\n"
    "  radmm-trace dump FILE                  every record as one JSON object per line\n"
    "  radmm-trace check FILE                 protocol invariants; prints the first violation\n"
    "  radmm-trace replay FILE [--layer I]    re-run layer I (or the whole run) from the trace\n"
    "                                         and compare what it sends, bit for bit (needs payloads)\n"
    "  radmm-trace export FILE --chrome OUT.json | --svg OUT.svg [--from-ms A] [--to-ms B] [--width PX]\n"
    "                                         timeline for Perfetto / chrome://tracing, or as a picture\n"
    "  radmm-trace stats FILE                 per node computing / waiting / communicating,\n"
    "                                         critical path, achieved overlap\n"
    "  radmm-trace simulate FILE [--workers P] [--latency L] [--bandwidth B] [--cores C]\n"
    "                                         predict the wall time under another placement or network\n"
    "                                         (L: 50us, 0.2ms; B: 10Gbit/s, 1.25GB/s); without L and B,\n"
    "                                         the recorded network: validates the model on the run itself\n"
    "  radmm-trace record OUT [run flags] [--payloads] [--per-node-streams]\n"
    "                                         run an in-process training on seeded data and trace it\n"
    "  radmm-trace overhead [run flags] [--repeat R] [--payloads]\n"
    "                                         time that run with and without recording\n"
    "  radmm-trace merge OUT PART...          join the per-process parts of a multi-process trace\n"
    "\n"
    "A truncated final record (a run that crashed) is reported on stderr and the readable\n"
    "prefix is used; any other damage is an error.\n"
    "\n"
    "exit codes:\n"
    "  0  success (check: no violation; replay: identical)\n"
    "  1  check found a violation, or replay diverged from the recording\n"
    "  2  bad command line\n"
    "  3  unreadable trace: missing, not a trace, another format version, or corrupt\n"
    "  4  the trace lacks what the command needs (payload bytes for replay, layers)\n"
    "  5  an output could not be written, or a recorded run failed\n";

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct cli_args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // "--flag" -> value ("" for switches)
};

cli_args parse(const std::vector<std::string>& args, const std::vector<std::string>& with_value,
               const std::vector<std::string>& switches) {
  cli_args a;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& s = args[i];
    if (s.size() > 2 && s.compare(0, 2, "--") == 0) {
      if (std::find(switches.begin(), switches.end(), s) != switches.end()) {
        a.flags[s] = "";
      } else if (std::find(with_value.begin(), with_value.end(), s) != with_value.end()) {
        if (i + 1 >= args.size()) throw usage_error(s + " needs a value");
        a.flags[s] = args[++i];
      } else {
        throw usage_error("unknown flag " + s);
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

// A whole-string number for a flag: std::stol or std::stod, then a check that
// nothing was left over; `what` names the expected kind in the error.
template <class T, class Parse>
T parse_number(const std::string& flag, const std::string& v, Parse parse, const char* what) {
  std::size_t used = 0;
  T x{};
  try {
    x = parse(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (v.empty() || used != v.size()) throw usage_error(flag + " needs " + what + ", got '" + v + "'");
  return x;
}

long parse_int(const std::string& flag, const std::string& v) {
  return parse_number<long>(flag, v, [](const std::string& t, std::size_t* u) { return std::stol(t, u); }, "an integer");
}

double parse_double(const std::string& flag, const std::string& v) {
  return parse_number<double>(flag, v, [](const std::string& t, std::size_t* u) { return std::stod(t, u); }, "a number");
}

std::string one_file(const cli_args& a, const char* cmd) {
  if (a.positional.size() != 1) throw usage_error(std::string(cmd) + " takes exactly one trace file");
  return a.positional[0];
}

tools::run_model load(const std::string& path) {
  pr::trace_data d = pr::read_trace_file(path);
  if (d.truncated) std::cerr << "radmm-trace: warning: " << path << ": truncated: " << d.truncation << "\n";
  for (const auto& s : d.streams)
    if (!s.ended && !d.truncated)
      std::cerr << "radmm-trace: warning: " << path << ": the stream of pid " << s.pid
                << " has no end record (its process stopped before closing the trace)\n";
  tools::run_model r = tools::build_model(std::move(d));
  for (const auto& n : r.notes) std::cerr << "radmm-trace: note: " << n << "\n";
  return r;
}

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (c == '\n') o += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      o += buf;
    } else o += c;
  }
  return o + "\"";
}

int cmd_info(const cli_args& a) {
  const std::string path = one_file(a, "info");
  const tools::run_model r = load(path);
  const auto& d = r.data;
  std::cout << path << ": radmm trace, format version " << pr::trace_format_version << ", " << d.file_bytes
            << " bytes" << (d.truncated ? " (truncated)" : "") << "\n";
  for (std::size_t s = 0; s < d.streams.size(); ++s) {
    const auto& st = d.streams[s];
    std::cout << "stream " << s << ": "
              << (st.node < 0 ? std::string("all nodes") : tools::node_name(st.node)) << ", pid " << st.pid
              << ", host " << (st.host.empty() ? "?" : st.host) << ", protocol version " << st.protocol_version
              << ", payloads " << (st.payloads ? "yes" : "no") << ", " << st.records << " records"
              << (st.ended ? "" : ", no end record") << (st.description.empty() ? "" : ", \"" + st.description + "\"")
              << "\n";
  }
  std::map<std::string, std::size_t> by_type;
  std::size_t unreceived = 0;
  std::uint64_t payload_bytes = 0;
  std::int64_t max_k = 0;
  for (const auto& m : r.messages) {
    ++by_type[pr::to_string(m.type)];
    if (m.send && !m.receive) ++unreceived;
    if (const auto* s = r.send_of(m))
      for (const auto& p : s->payloads) payload_bytes += p.bytes();
    if (m.type == pr::msg_type::tick || m.type == pr::msg_type::tock) max_k = std::max(max_k, m.iteration);
  }
  std::cout << "layers: " << r.layers << "; messages: " << r.messages.size() << " (";
  bool first = true;
  for (const auto& [t, n] : by_type) {
    std::cout << (first ? "" : ", ") << t << " " << n;
    first = false;
  }
  std::cout << "); " << unreceived << " sent but not received\n";
  std::cout << "matrix payloads described: " << payload_bytes << " bytes" << (r.payloads ? " (stored)" : " (not stored)")
            << "\n";
  std::cout << "compute spans: " << r.spans.size() << "; last iteration: " << max_k << "\n";
  char buf[160];
  std::snprintf(buf, sizeof buf, "duration: %.3f ms; training window (first STEP to last SYNC): %.3f ms\n",
                static_cast<double>(r.t_end) / 1e6, static_cast<double>(r.run_end - r.run_begin) / 1e6);
  std::cout << buf;
  return exit_code::ok;
}

int cmd_dump(const cli_args& a) {
  const std::string path = one_file(a, "dump");
  const tools::run_model r = load(path);
  const auto& d = r.data;
  std::ostringstream os;
  for (std::size_t s = 0; s < d.streams.size(); ++s) {
    const auto& st = d.streams[s];
    os << "{\"record\":\"stream\",\"index\":" << s << ",\"format_version\":" << st.format_version
       << ",\"protocol_version\":" << st.protocol_version << ",\"node\":" << st.node << ",\"layers\":" << st.layers
       << ",\"pid\":" << st.pid << ",\"steady_ns\":" << st.steady_ns << ",\"system_ns\":" << st.system_ns
       << ",\"payloads\":" << (st.payloads ? "true" : "false") << ",\"host\":" << json_str(st.host)
       << ",\"boot_id\":" << json_str(st.boot_id) << ",\"description\":" << json_str(st.description)
       << ",\"ended\":" << (st.ended ? "true" : "false") << "}\n";
  }
  for (const auto& [kind, index] : d.order) {
    if (kind == pr::trace_record_kind::send) {
      const auto& s = d.sends[index];
      const auto& m = r.messages[r.message_of_send[index]];
      os << "{\"record\":\"send\",\"seq\":" << m.seq << ",\"stream\":" << s.stream << ",\"t_ns\":" << m.t_send_begin
         << ",\"t_end_ns\":" << m.t_send_end << ",\"type\":\"" << pr::to_string(s.type) << "\",\"from\":" << s.sender
         << ",\"to\":" << s.receiver << ",\"channel_seq\":" << s.channel_seq << ",\"version\":" << s.version
         << ",\"iteration\":" << s.iteration << ",\"batch\":" << s.batch << ",\"count\":" << s.count
         << ",\"flags\":" << s.flags << ",\"text\":" << json_str(s.text) << ",\"payloads\":[";
      for (std::size_t i = 0; i < s.payloads.size(); ++i) {
        const auto& p = s.payloads[i];
        os << (i ? "," : "") << "{\"kind\":\"" << pr::to_string(p.kind) << "\",\"layer\":" << p.layer
           << ",\"rows\":" << p.rows << ",\"cols\":" << p.cols << ",\"bytes\":" << p.bytes()
           << ",\"stored\":" << (p.data ? "true" : "false") << "}";
      }
      os << "]}\n";
    } else if (kind == pr::trace_record_kind::receive) {
      const auto& x = d.receives[index];
      const auto& m = r.messages[r.message_of_receive[index]];
      os << "{\"record\":\"receive\",\"seq\":" << m.seq << ",\"stream\":" << x.stream << ",\"t_wait_ns\":" << m.t_wait
         << ",\"t_ns\":" << m.t_receive << ",\"type\":\"" << pr::to_string(x.type) << "\",\"from\":" << x.sender
         << ",\"to\":" << x.receiver << ",\"channel_seq\":" << x.channel_seq << ",\"iteration\":" << x.iteration
         << ",\"batch\":" << x.batch << "}\n";
    } else if (kind == pr::trace_record_kind::span) {
      const auto& s = r.spans[index];
      os << "{\"record\":\"span\",\"node\":" << s.node << ",\"block\":\"" << pr::to_string(s.block)
         << "\",\"depth\":" << static_cast<int>(s.depth) << ",\"k\":" << s.iteration << ",\"t_ns\":" << s.t_begin
         << ",\"t_end_ns\":" << s.t_end << "}\n";
    }
  }
  if (d.truncated) os << "{\"record\":\"truncated\",\"what\":" << json_str(d.truncation) << "}\n";
  std::cout << os.str();
  return exit_code::ok;
}

int cmd_check(const cli_args& a) {
  const std::string path = one_file(a, "check");
  const tools::run_model r = load(path);
  const auto v = tools::check_trace(r);
  if (v.empty()) {
    std::cout << path << ": ok: " << r.messages.size() << " messages between " << r.layers
              << " layers and the coordinator follow the protocol\n";
    return exit_code::ok;
  }
  std::cout << path << ": violation at seq " << v.front().seq << ": " << v.front().what << "\n";
  if (v.size() > 1) std::cout << "(" << v.size() - 1 << " more after it)\n";
  return exit_code::found;
}

int cmd_replay(const cli_args& a) {
  const std::string path = one_file(a, "replay");
  const tools::run_model r = load(path);
  Eigen::setNbThreads(1);  // as the workers compute
  tools::replay_result res;
  if (a.flags.count("--layer")) res = tools::replay_layer(r, static_cast<int>(parse_int("--layer", a.flags.at("--layer"))));
  else res = tools::replay_run(r);
  std::cout << path << ": " << (res.identical ? "identical: " : "divergence: ") << res.report << "\n";
  return res.identical ? exit_code::ok : exit_code::found;
}

void write_file(const std::string& out, const std::string& what, const std::function<void(std::ostream&)>& body) {
  const std::string tmp = out + ".tmp";
  {
    std::ofstream os(tmp, std::ios::binary | std::ios::trunc);
    if (!os) throw std::ios_base::failure("cannot write " + tmp);
    body(os);
    os.flush();
    if (!os) throw std::ios_base::failure("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), out.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::ios_base::failure("cannot rename " + tmp + " to " + out);
  }
  std::cout << "wrote " << what << " to " << out << "\n";
}

int cmd_export(const cli_args& a) {
  const std::string path = one_file(a, "export");
  const bool chrome = a.flags.count("--chrome") > 0, svg = a.flags.count("--svg") > 0;
  if (!chrome && !svg) throw usage_error("export needs --chrome OUT.json or --svg OUT.svg");
  tools::svg_options so;
  if (a.flags.count("--from-ms")) so.from_ms = parse_double("--from-ms", a.flags.at("--from-ms"));
  if (a.flags.count("--to-ms")) so.to_ms = parse_double("--to-ms", a.flags.at("--to-ms"));
  if (a.flags.count("--width")) so.width = static_cast<int>(parse_int("--width", a.flags.at("--width")));
  const tools::run_model r = load(path);
  if (chrome)
    write_file(a.flags.at("--chrome"), "a Chrome trace (open in https://ui.perfetto.dev or chrome://tracing)",
               [&](std::ostream& os) { tools::write_chrome_trace(r, os); });
  if (svg) write_file(a.flags.at("--svg"), "an SVG timeline", [&](std::ostream& os) { tools::write_svg(r, os, so); });
  return exit_code::ok;
}

int cmd_stats(const cli_args& a) {
  const std::string path = one_file(a, "stats");
  const tools::run_model r = load(path);
  if (r.layers < 1) throw tools::trace_incomplete("the trace has no layers");
  if (r.spans.empty()) std::cerr << "radmm-trace: warning: no compute spans in this trace\n";
  std::cout << tools::format_stats(r, tools::compute_stats(r));
  return exit_code::ok;
}

int cmd_simulate(const cli_args& a) {
  const std::string path = one_file(a, "simulate");
  tools::sim_options o;
  try {
    if (a.flags.count("--workers")) o.workers = static_cast<int>(parse_int("--workers", a.flags.at("--workers")));
    if (a.flags.count("--cores")) o.cores = static_cast<int>(parse_int("--cores", a.flags.at("--cores")));
    if (a.flags.count("--latency")) o.latency_s = tools::parse_duration_s(a.flags.at("--latency"));
    if (a.flags.count("--bandwidth")) o.bandwidth_Bps = tools::parse_bandwidth_Bps(a.flags.at("--bandwidth"));
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }
  if (o.workers < 0 || o.cores < 1) throw usage_error("--workers must be >= 1 and --cores >= 1");
  const tools::run_model r = load(path);
  std::cout << tools::format_simulation(tools::simulate(r, o));
  return exit_code::ok;
}

int cmd_record(const std::vector<std::string>& args) {
  tools::demo_options o;
  std::vector<std::string> rest;
  try {
    rest = tools::parse_demo_flags(args, o);
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }
  const cli_args a = parse(rest, {}, {"--payloads", "--per-node-streams"});
  if (a.positional.size() != 1) throw usage_error("record takes exactly one output file");
  const auto p = tools::make_demo_problem(o);
  const auto s = tools::make_demo_schedule(o);
  const std::string desc = "radmm-trace record: " + std::to_string(o.layers) + " layers, " + o.algorithm + " " +
                           o.variant + ", " + o.activation + ", " + std::to_string(o.samples) + " samples, " +
                           std::to_string(o.iterations) + " iterations";
  Eigen::setNbThreads(1);
  tools::recording rec;
  rec.path = a.positional[0];
  rec.payloads = a.flags.count("--payloads") > 0;
  rec.per_node_streams = a.flags.count("--per-node-streams") > 0;
  rec.description = desc;
  const auto res = tools::train_inproc_recorded(p, s, rec);
  std::printf("recorded %ld iterations in %.3f s to %s\n", res.updates, res.seconds, a.positional[0].c_str());
  return exit_code::ok;
}

int cmd_overhead(const std::vector<std::string>& args) {
  tools::demo_options o;
  std::vector<std::string> rest;
  try {
    rest = tools::parse_demo_flags(args, o);
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }
  const cli_args a = parse(rest, {"--repeat", "--dir"}, {"--payloads"});
  if (!a.positional.empty()) throw usage_error("overhead takes no file");
  const long repeat = a.flags.count("--repeat") ? parse_int("--repeat", a.flags.at("--repeat")) : 5;
  if (repeat < 1) throw usage_error("--repeat must be >= 1");
  const std::string dir = a.flags.count("--dir") ? a.flags.at("--dir") : "/tmp";
  const std::string file = dir + "/radmm-trace-overhead-" + std::to_string(::getpid()) + ".rtrace";
  const auto p = tools::make_demo_problem(o);
  const auto s = tools::make_demo_schedule(o);
  Eigen::setNbThreads(1);
  std::vector<double> plain, traced, plain_cpu, traced_cpu;
  std::uint64_t bytes = 0;
  // CPU seconds of the whole process (every thread): what recording adds, even
  // on a machine too loaded for wall times to mean much.
  auto cpu_now = [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  };
  for (long k = 0; k < repeat; ++k) {  // alternate, so drift in machine load hits both alike
    double c0 = cpu_now();
    plain.push_back(tools::train_inproc_recorded(p, s, tools::recording{}).seconds);
    plain_cpu.push_back(cpu_now() - c0);
    c0 = cpu_now();
    traced.push_back(
        tools::train_inproc_recorded(p, s, tools::recording{file, a.flags.count("--payloads") > 0, false, "overhead"})
            .seconds);
    traced_cpu.push_back(cpu_now() - c0);
    std::ifstream f(file, std::ios::binary | std::ios::ate);
    bytes = static_cast<std::uint64_t>(f.tellg());
  }
  std::remove(file.c_str());
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double mp = median(plain), mt = median(traced);
  std::printf("%d layers, %ld iterations, %d samples, %ld runs each (medians)\n", o.layers, o.iterations, o.samples,
              repeat);
  std::printf("untraced: %.4f s   traced%s: %.4f s   overhead: %+.2f%%   trace: %llu bytes\n", mp,
              a.flags.count("--payloads") ? " (payloads)" : "", mt, 100.0 * (mt - mp) / mp,
              static_cast<unsigned long long>(bytes));
  const double cp = median(plain_cpu), ct = median(traced_cpu);
  std::printf("cpu time (all threads): untraced %.4f s   traced %.4f s   overhead: %+.2f%%\n", cp, ct,
              100.0 * (ct - cp) / cp);
  std::printf("min wall: untraced %.4f s, traced %.4f s (%+.2f%%)\n", *std::min_element(plain.begin(), plain.end()),
              *std::min_element(traced.begin(), traced.end()),
              100.0 * (*std::min_element(traced.begin(), traced.end()) / *std::min_element(plain.begin(), plain.end()) - 1));
  return exit_code::ok;
}

int cmd_merge(const std::vector<std::string>& args) {
  if (args.size() < 2) throw usage_error("merge takes OUT and at least one PART");
  const std::vector<std::string> parts(args.begin() + 1, args.end());
  for (const auto& n : pr::merge_trace_files(args[0], parts, false)) std::cerr << "radmm-trace: note: " << n << "\n";
  std::cout << "merged " << parts.size() << " parts into " << args[0] << "\n";
  return exit_code::ok;
}

int run(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << usage_text;
    return args.empty() ? exit_code::usage : exit_code::ok;
  }
  const std::string cmd = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const auto& s : rest)
    if (s == "--help" || s == "-h") {
      std::cout << usage_text;
      if (cmd == "record" || cmd == "overhead") std::cout << "\n" << tools::demo_flags_help();
      return exit_code::ok;
    }
  if (cmd == "info") return cmd_info(parse(rest, {}, {}));
  if (cmd == "dump") return cmd_dump(parse(rest, {}, {}));
  if (cmd == "check") return cmd_check(parse(rest, {}, {}));
  if (cmd == "replay") return cmd_replay(parse(rest, {"--layer"}, {}));
  if (cmd == "export") return cmd_export(parse(rest, {"--chrome", "--svg", "--from-ms", "--to-ms", "--width"}, {}));
  if (cmd == "stats") return cmd_stats(parse(rest, {}, {}));
  if (cmd == "simulate") return cmd_simulate(parse(rest, {"--workers", "--latency", "--bandwidth", "--cores"}, {}));
  if (cmd == "record") return cmd_record(rest);
  if (cmd == "overhead") return cmd_overhead(rest);
  if (cmd == "merge") return cmd_merge(rest);
  throw usage_error("unknown command '" + cmd + "'");
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return run(args);
  } catch (const usage_error& e) {
    std::cerr << "radmm-trace: " << e.what() << "\n(radmm-trace --help lists commands, flags and exit codes)\n";
    return exit_code::usage;
  } catch (const pr::trace_error& e) {
    std::cerr << "radmm-trace: " << e.what() << "\n";
    return exit_code::bad_trace;
  } catch (const tools::trace_incomplete& e) {
    std::cerr << "radmm-trace: " << e.what() << "\n";
    return exit_code::incomplete;
  } catch (const std::invalid_argument& e) {
    std::cerr << "radmm-trace: " << e.what() << "\n";
    return exit_code::usage;
  } catch (const std::exception& e) {
    std::cerr << "radmm-trace: " << e.what() << "\n";
    return exit_code::failed;
  }
}
