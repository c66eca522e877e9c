#include "coordinator/config.hpp"

#include "core/activation.hpp"
#include "core/data.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

namespace radmm::coordinator {

parallel_mode parse_parallel(const std::string& s) {
  if (s == "none" || s == "off") return parallel_mode::none;
  if (s == "inproc") return parallel_mode::inproc;
  if (s == "shm") return parallel_mode::shm;
  if (s == "tcp") return parallel_mode::tcp;
  throw config_error("unknown --parallel '" + s + "' (expected none, inproc, shm or tcp)");
}

std::string to_string(parallel_mode m) {
  switch (m) {
    case parallel_mode::none:
      return "none";
    case parallel_mode::inproc:
      return "inproc";
    case parallel_mode::shm:
      return "shm";
    case parallel_mode::tcp:
      return "tcp";
  }
  return "none";
}

namespace {

// ---------------------------------------------------------------- values

std::string format_double(double d) {
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[40];
  // The shortest precision that reads back to the same double: config.txt must
  // reproduce the run exactly, and 0.2 reads better than 0.20000000000000001.
  for (int prec = 15; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  return buf;
}

[[noreturn]] void bad_value(const std::string& subject, const std::string& value,
                            const std::string& expected) {
  throw config_error(subject + ": '" + value + "' is not " + expected);
}

long long parse_integer(const std::string& v, const std::string& subject, long long lo, long long hi) {
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || end != v.c_str() + v.size()) bad_value(subject, v, "an integer");
  if (errno == ERANGE || x < lo || x > hi)
    throw config_error(subject + ": " + v + " is out of range (" + std::to_string(lo) + " .. " +
                       std::to_string(hi) + ")");
  return x;
}

std::uint64_t parse_u64(const std::string& v, const std::string& subject) {
  errno = 0;
  char* end = nullptr;
  // strtoull accepts "-1" and wraps it; a seed is written without a sign.
  if (v.empty() || v[0] < '0' || v[0] > '9') bad_value(subject, v, "a non-negative integer");
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  if (end != v.c_str() + v.size()) bad_value(subject, v, "a non-negative integer");
  if (errno == ERANGE) throw config_error(subject + ": " + v + " is out of range (at most 2^64 - 1)");
  return x;
}

double parse_real(const std::string& v, const std::string& subject, bool allow_inf) {
  errno = 0;
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size() || std::isspace(static_cast<unsigned char>(v[0])))
    bad_value(subject, v, "a number");
  if (std::isnan(x)) bad_value(subject, v, "a number (NaN is not allowed)");
  if (std::isinf(x) && !allow_inf) bad_value(subject, v, "a finite number");
  return x;
}

bool parse_bool(const std::string& v, const std::string& subject) {
  if (v == "true" || v == "on" || v == "yes" || v == "1") return true;
  if (v == "false" || v == "off" || v == "no" || v == "0") return false;
  bad_value(subject, v, "a boolean (on/off, true/false)");
}

// An explicit way to hand a hyper-parameter back to the preset, e.g. to undo a
// value from a config file on the command line.
bool is_preset_word(const std::string& v) { return v == "preset" || v == "(preset)"; }

// ---------------------------------------------------------------- the table

struct setting {
  std::string name;        // flag name without dashes
  std::string meaning;     // one line for --help
  bool is_switch = false;  // boolean flag that takes no value on the command line
  std::function<void(run_config&, const std::string& value, const std::string& subject)> apply;
  // Current value as written in config.txt; nullopt: an unset optional.
  std::function<std::optional<std::string>(const run_config&)> show;
  std::string placeholder = "VALUE";  // --help: what the value looks like
};

setting text(const char* name, std::string run_config::*f, const char* placeholder, const char* meaning) {
  return {name,
          meaning,
          false,
          [f](run_config& c, const std::string& v, const std::string&) { c.*f = v; },
          [f](const run_config& c) { return std::optional<std::string>(c.*f); },
          placeholder};
}

template <class Int>
setting integer(const char* name, Int run_config::*f, const char* placeholder, const char* meaning) {
  return {name,
          meaning,
          false,
          [f](run_config& c, const std::string& v, const std::string& s) {
            c.*f = static_cast<Int>(
                parse_integer(v, s, std::numeric_limits<Int>::min(), std::numeric_limits<Int>::max()));
          },
          [f](const run_config& c) { return std::optional<std::string>(std::to_string(c.*f)); },
          placeholder};
}

setting real(const char* name, double run_config::*f, const char* placeholder, const char* meaning) {
  return {name,
          meaning,
          false,
          [f](run_config& c, const std::string& v, const std::string& s) { c.*f = parse_real(v, s, false); },
          [f](const run_config& c) { return std::optional<std::string>(format_double(c.*f)); },
          placeholder};
}

setting switch_flag(const char* name, bool run_config::*f, const char* meaning) {
  return {name,
          meaning,
          true,
          [f](run_config& c, const std::string& v, const std::string& s) { c.*f = parse_bool(v, s); },
          [f](const run_config& c) { return std::optional<std::string>(c.*f ? "true" : "false"); },
          ""};
}

setting opt_real(const char* name, std::optional<double> run_config::*f, const char* placeholder,
                 const char* meaning, bool allow_inf = false) {
  return {name,
          meaning,
          false,
          [f, allow_inf](run_config& c, const std::string& v, const std::string& s) {
            if (is_preset_word(v))
              c.*f = std::nullopt;
            else
              c.*f = parse_real(v, s, allow_inf);
          },
          [f](const run_config& c) {
            return (c.*f) ? std::optional<std::string>(format_double(*(c.*f))) : std::nullopt;
          },
          placeholder};
}

setting opt_int(const char* name, std::optional<int> run_config::*f, const char* placeholder,
                const char* meaning) {
  return {name,
          meaning,
          false,
          [f](run_config& c, const std::string& v, const std::string& s) {
            if (is_preset_word(v))
              c.*f = std::nullopt;
            else
              c.*f = static_cast<int>(
                  parse_integer(v, s, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
          },
          [f](const run_config& c) {
            return (c.*f) ? std::optional<std::string>(std::to_string(*(c.*f))) : std::nullopt;
          },
          placeholder};
}

const std::vector<setting>& settings() {
  static const std::vector<setting> table = [] {
    std::vector<setting> t;
    // data
    t.push_back(text("data", &run_config::data, "FILE",
                     "CSV file to train on (',' or ';', header optional); empty: --dataset"));
    t.push_back(text("target", &run_config::target, "COLUMN",
                     "target column of --data: name or 0-based index, negative from the end"));
    t.push_back(text("dataset", &run_config::dataset, "NAME",
                     "built-in data when --data is empty: teacher | oscillating"));
    t.push_back(integer("samples", &run_config::samples, "N", "rows of the built-in data set"));
    t.push_back(integer("features", &run_config::features, "N", "inputs of the built-in data set"));
    t.push_back(real("test-fraction", &run_config::test_fraction, "X",
                     "share of rows held out for testing, in [0, 1)"));
    t.push_back(text("normalize", &run_config::normalize, "MODE",
                     "feature and target scaling fitted on the training rows: minmax | none"));
    t.push_back({"bias", "append a constant 1 input feature: on | off", false,
                 [](run_config& c, const std::string& v, const std::string& s) { c.bias = parse_bool(v, s); },
                 [](const run_config& c) { return std::optional<std::string>(c.bias ? "on" : "off"); },
                 "on|off"});
    // model
    t.push_back(integer("layers", &run_config::layers, "N",
                        "number of layers N (N - 1 residual blocks and a linear output), >= 2"));
    t.push_back(
        integer("width", &run_config::width, "N", "hidden width d (>= input width); 0: max(input width, 32), see README Defaults"));
    t.push_back(
        text("activation", &run_config::activation, "NAME", "relu | leaky_relu | sigmoid | tanh | sin"));
    t.push_back({"seed", "seed of the split, the initial weights and the built-in data", false,
                 [](run_config& c, const std::string& v, const std::string& s) { c.seed = parse_u64(v, s); },
                 [](const run_config& c) { return std::optional<std::string>(std::to_string(c.seed)); },
                 "N"});
    t.push_back(
        text("init", &run_config::init, "NAME",
             "residual (Kaiming with residual branches scaled by 1/sqrt(N-1)) | kaiming (the paper's)"));
    t.push_back(text("init-from", &run_config::init_from, "DIR",
                     "directory with W_1.npy .. W_N.npy to start from; empty: Kaiming init"));
    // optimisation
    t.push_back(text("algorithm", &run_config::algorithm, "2s|3s",
                     "2s (two-splitting, Algorithm 1) | 3s (three-splitting, Algorithm 2)"));
    t.push_back(text("variant", &run_config::variant, "NAME",
                     "linearized (proximal-linearized updates) | proximal (inner solver)"));
    t.push_back({"refit-output", "after training, set W_N to the exact ridge fit of Y on the plain forward features: on | off", false,
                 [](run_config& c, const std::string& v, const std::string& s) { c.refit_output = parse_bool(v, s); },
                 [](const run_config& c) { return std::optional<std::string>(c.refit_output ? "on" : "off"); },
                 "on|off"});
    t.push_back(text("optimizer", &run_config::optimizer, "NAME",
                     "admm (RADMM, --algorithm) | sgd | sgdm | adam (backprop baselines on the same model)"));
    t.push_back(opt_real("lr", &run_config::lr, "X", "backprop learning rate, > 0"));
    t.push_back(opt_real("weight-decay", &run_config::weight_decay, "X", "backprop weight decay (L2, PyTorch-style), >= 0"));
    t.push_back(opt_real("momentum", &run_config::momentum, "X", "sgdm momentum, in [0, 1)"));
    t.push_back(text("preset", &run_config::preset, "NAME",
                     "hyper-parameter preset for unset values: default | paper | oscillating"));
    t.push_back(
        integer("iterations", &run_config::iterations, "N", "ADMM iterations (passes over the data), >= 1"));
    t.push_back(integer("batch-size", &run_config::batch_size, "N", "samples per mini-batch; 0: full batch"));
    t.push_back(integer("updates-per-batch", &run_config::updates_per_batch, "N",
                        "ADMM updates on each mini-batch, >= 1"));
    t.push_back(
        opt_real("beta", &run_config::beta, "X", "penalty beta on W_N V_{N-1} = V_N (and U_i, 3s), > 0"));
    t.push_back(opt_real("mu", &run_config::mu, "X", "weight mu of the residual-block penalty, > 0"));
    t.push_back(opt_real("lambda", &run_config::lambda, "X", "ridge weight lambda on every W_i, >= 0"));
    t.push_back(opt_real("tau", &run_config::tau, "X",
                         "initial proximal step-size tau of the W (2s) or U (3s) update, > 0"));
    t.push_back(
        opt_real("nu", &run_config::nu, "X", "initial proximal step-size nu of the V update (2s), > 0"));
    t.push_back(opt_real("ef-tau", &run_config::ef_tau, "X",
                         "expansion factor: iteration k uses tau * ef_tau^k, >= 1"));
    t.push_back(
        opt_real("ef-nu", &run_config::ef_nu, "X", "expansion factor: iteration k uses nu * ef_nu^k, >= 1"));
    t.push_back(opt_real("kappa", &run_config::kappa, "X",
                         "radius of the ball ||W_i|| <= kappa, > 0; inf: none", true));
    t.push_back(opt_real("inner-tol", &run_config::inner_tol, "X",
                         "tolerance of the inner solver (--variant proximal), > 0"));
    t.push_back(opt_int("inner-max-iter", &run_config::inner_max_iter, "N",
                        "iteration cap of the inner solver, >= 1"));
    // execution
    t.push_back(integer("threads", &run_config::threads, "N",
                        "threads for the linear algebra of each process, >= 1"));
    t.push_back({"parallel", "run layers as: none (serial) | inproc (threads) | shm (processes) | tcp", false,
                 [](run_config& c, const std::string& v, const std::string& s) {
                   try {
                     c.parallel = parse_parallel(v);
                   } catch (const config_error&) {
                     bad_value(s, v, "a parallel mode (none, inproc, shm or tcp)");
                   }
                 },
                 [](const run_config& c) { return std::optional<std::string>(to_string(c.parallel)); },
                 "MODE"});
    t.push_back(integer("sync-every", &run_config::sync_every, "N",
                        "full batch, parallel: iterations between synchronisations, >= 1"));
    t.push_back(text("listen", &run_config::listen, "HOST:PORT",
                     "--parallel tcp: where the coordinator listens (HOST may be an interface); port 0: any"));
    t.push_back(text("token-file", &run_config::token_file, "FILE",
                     "--parallel tcp: shared secret for the HMAC handshake; empty: random (spawned workers only)"));
    t.push_back({"spawn-workers", "--parallel tcp: start local workers (on) or wait for workers launched elsewhere (off)", false,
                 [](run_config& c, const std::string& v, const std::string& s) { c.spawn_workers = parse_bool(v, s); },
                 [](const run_config& c) { return std::optional<std::string>(c.spawn_workers ? "on" : "off"); },
                 "on|off"});
    t.push_back(text("worker-bind", &run_config::worker_bind, "ADDR",
                     "--parallel tcp: address or interface the spawned workers bind to"));
    t.push_back(integer("heartbeat-ms", &run_config::heartbeat_ms, "MS", "--parallel tcp: heartbeat interval"));
    t.push_back(integer("peer-timeout-ms", &run_config::peer_timeout_ms, "MS",
                        "--parallel tcp: a peer silent this long is lost (> heartbeat)"));
    t.push_back(integer("connect-timeout-ms", &run_config::connect_timeout_ms, "MS",
                        "--parallel tcp: how long to wait for every worker to connect"));
    t.push_back(real("residual-bound", &run_config::residual_bound, "X",
                     "stop as diverged when a layer's constraint residual exceeds X (at recorded iterations); 0: off"));
    t.push_back(integer("checkpoint-every", &run_config::checkpoint_every, "N",
                        "write a checkpoint into OUT/checkpoints every N iterations; 0: never"));
    t.push_back(text("resume", &run_config::resume, "DIR",
                     "continue the run in DIR from its last complete checkpoint (other settings come from DIR/config.txt)"));
    t.push_back(integer("max-restarts", &run_config::max_restarts, "N",
                        "when a worker dies, restart from the last checkpoint up to N times"));
    t.push_back(switch_flag("checkpoint-on-exit", &run_config::checkpoint_on_exit,
                            "on SIGINT/SIGTERM, write a checkpoint at the next STEP boundary before stopping"));
    t.push_back(integer("metrics-every", &run_config::metrics_every, "N",
                        "compute metrics every M iterations (and the last), >= 1"));
    t.push_back(text("out", &run_config::out, "DIR",
                     "output directory (model.json, W_i.npy, metrics.csv, config.txt)"));
    t.push_back(switch_flag("quiet", &run_config::quiet, "print only errors"));
    t.push_back(switch_flag("force", &run_config::force, "replace an existing non-empty --out directory"));
    t.push_back(text("trace", &run_config::trace, "FILE",
                     "write a message trace of a parallel run to FILE; empty: none"));
    t.push_back(
        switch_flag("trace-payloads", &run_config::trace_payloads, "include matrix payloads in the trace"));
    return t;
  }();
  return table;
}

std::string normalize_key(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

const setting* find_setting(const std::string& key) {
  for (const auto& s : settings())
    if (s.name == key) return &s;
  return nullptr;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0u : 1u)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_name(const std::string& key) {
  std::string best = "config";
  std::size_t best_d = edit_distance(key, best);
  for (const auto& s : settings()) {
    const std::size_t d = edit_distance(key, s.name);
    if (d < best_d) {
      best_d = d;
      best = s.name;
    }
  }
  return best;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Values that would not survive "key = value" trimming and '#' comments are
// written as "..." with \" and \\ escapes.
bool needs_quotes(const std::string& v) {
  return !v.empty() && (v != trim(v) || v.find('#') != std::string::npos || v.front() == '"' ||
                        v.find('\n') != std::string::npos);
}

std::string quote(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

std::string flag_help_name(const setting& s) {
  if (s.is_switch) return "--" + s.name;
  return "--" + s.name + " " + s.placeholder;
}

}  // namespace

// ---------------------------------------------------------------- public API

void apply_setting(run_config& cfg, const std::string& key_in, const std::string& value,
                   const std::string& where) {
  std::string key = key_in;
  if (key.rfind("--", 0) == 0) key = key.substr(2);
  key = normalize_key(key);
  const bool from_flag = where.rfind("--", 0) == 0;
  const setting* s = find_setting(key);
  if (!s) {
    if (from_flag)
      throw config_error("unknown flag --" + key_in.substr(key_in.rfind("--", 0) == 0 ? 2 : 0) +
                         " (did you mean --" + closest_name(key) + "?)");
    throw config_error(where + ": unknown key '" + key_in + "' (did you mean '" + closest_name(key) + "'?)");
  }
  // Flags name themselves; file lines add the key after "FILE:LINE".
  const std::string subject = from_flag ? "--" + s->name : where + ": " + s->name;
  s->apply(cfg, value, subject);
}

void read_config_file(run_config& cfg, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw config_error(path + ": cannot open the config file: " + std::strerror(errno));
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string where = path + ":" + std::to_string(lineno);
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const auto eq = t.find('=');
    if (eq == std::string::npos) throw config_error(where + ": expected 'key = value', found '" + t + "'");
    const std::string key = trim(t.substr(0, eq));
    if (key.empty()) throw config_error(where + ": missing key before '='");
    std::string rest = trim(t.substr(eq + 1));
    std::string value;
    if (!rest.empty() && rest[0] == '"') {
      std::size_t i = 1;
      bool closed = false;
      for (; i < rest.size(); ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) {
          ++i;
          value.push_back(rest[i] == 'n' ? '\n' : rest[i]);
        } else if (rest[i] == '"') {
          closed = true;
          break;
        } else {
          value.push_back(rest[i]);
        }
      }
      if (!closed) throw config_error(where + ": unterminated quoted value");
      const std::string after = trim(rest.substr(i + 1));
      if (!after.empty() && after[0] != '#')
        throw config_error(where + ": unexpected text after the quoted value");
    } else {
      // '#' starts a comment at the start of the value or after whitespace, so
      // paths such as "run#3" keep their '#'.
      std::size_t cut = std::string::npos;
      for (std::size_t i = 0; i < rest.size(); ++i)
        if (rest[i] == '#' && (i == 0 || rest[i - 1] == ' ' || rest[i - 1] == '\t')) {
          cut = i;
          break;
        }
      value = trim(rest.substr(0, cut));
    }
    if (normalize_key(key) == "config")
      throw config_error(where + ": a config file cannot include another (config = ...)");
    apply_setting(cfg, key, value, where);
  }
  if (in.bad()) throw config_error(path + ": read error: " + std::strerror(errno));
}

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

run_config parse_train_args(const std::vector<std::string>& args) {
  struct flag_value {
    std::string name, value;
  };
  std::vector<flag_value> flags;
  std::string config_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a.size() == 2)
      throw config_error("unexpected argument '" + a +
                         "' (flags look like --name value; see radmm train --help)");
    const auto eq = a.find('=');
    const std::string name = normalize_key(a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2));
    const bool inline_value = eq != std::string::npos;
    std::string value = inline_value ? a.substr(eq + 1) : "";
    const setting* s = find_setting(name);
    if (!s && name != "config")
      throw config_error("unknown flag --" + name + " (did you mean --" + closest_name(name) + "?)");
    if (s && s->is_switch) {
      if (!inline_value) value = "true";
    } else if (!inline_value) {
      // "--out --force" means a forgotten value, not a directory named "--force".
      if (i + 1 >= args.size() || (args[i + 1].rfind("--", 0) == 0 && args[i + 1].size() > 2))
        throw config_error("--" + name + " needs a value");
      value = args[++i];
    }
    if (name == "config") {
      if (value.empty()) throw config_error("--config needs a file name");
      config_path = value;
    } else {
      flags.push_back({name, value});
    }
  }
  run_config cfg;
  // The file first, so every flag on the command line overrides it.
  if (!config_path.empty()) read_config_file(cfg, config_path);
  for (const auto& f : flags) apply_setting(cfg, f.name, f.value, "--" + f.name);
  return cfg;
}

std::string to_config_text(const run_config& cfg) {
  std::ostringstream out;
  out << "# radmm train configuration; repeat the run with: radmm train --config FILE\n"
      << "# Hyper-parameters written as comments were not set and come from the preset.\n";
  for (const auto& s : settings()) {
    const std::optional<std::string> v = s.show(cfg);
    if (!v) {
      out << "# " << s.name << " = (preset)\n";
      continue;
    }
    out << s.name << " =" << (v->empty() ? "" : " ") << (needs_quotes(*v) ? quote(*v) : *v) << "\n";
  }
  return out.str();
}

void validate(const run_config& c) {
  auto require = [](bool ok, const std::string& msg) {
    if (!ok) throw config_error(msg);
  };
  auto got = [](double v) { return " (got " + format_double(v) + ")"; };

  if (c.data.empty()) {
    const auto names = core::builtin_names();
    if (std::find(names.begin(), names.end(), c.dataset) == names.end()) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      throw config_error("--dataset: unknown built-in dataset '" + c.dataset + "' (available: " + list +
                         "); or give a CSV file with --data");
    }
  }
  require(c.samples >= 2, "--samples must be at least 2" + got(c.samples));
  require(c.features >= 1, "--features must be at least 1" + got(c.features));
  require(c.test_fraction >= 0 && c.test_fraction < 1,
          "--test-fraction must be in [0, 1)" + got(c.test_fraction));
  require(c.normalize == "minmax" || c.normalize == "none",
          "--normalize must be minmax or none (got '" + c.normalize + "')");
  require(c.optimizer == "admm" || c.optimizer == "sgd" || c.optimizer == "sgdm" || c.optimizer == "adam",
          "--optimizer must be admm, sgd, sgdm or adam (got '" + c.optimizer + "')");
  require(c.init == "residual" || c.init == "kaiming",
          "--init must be residual or kaiming (got '" + c.init + "')");
  require(c.layers >= 2, "--layers must be at least 2" + got(c.layers));
  require(c.width >= 0, "--width must be at least 0 (0: max(input width, 32))" + got(c.width));
  try {
    core::parse_activation(c.activation);
  } catch (const std::invalid_argument& e) {
    throw config_error(std::string("--activation: ") + e.what());
  }
  try {
    core::parse_algorithm(c.algorithm);
  } catch (const std::invalid_argument& e) {
    throw config_error(std::string("--algorithm: ") + e.what());
  }
  try {
    core::parse_variant(c.variant);
  } catch (const std::invalid_argument& e) {
    throw config_error(std::string("--variant: ") + e.what());
  }
  {
    const auto names = core::preset_names();
    if (std::find(names.begin(), names.end(), c.preset) == names.end()) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      throw config_error("--preset: unknown preset '" + c.preset + "' (available: " + list + ")");
    }
  }
  require(c.iterations >= 1, "--iterations must be at least 1" + got(c.iterations));
  require(c.batch_size >= 0,
          "--batch-size must be at least 0 (0: full batch)" + got(static_cast<double>(c.batch_size)));
  require(c.updates_per_batch >= 1, "--updates-per-batch must be at least 1" + got(c.updates_per_batch));
  if (c.beta) require(*c.beta > 0, "--beta must be > 0" + got(*c.beta));
  if (c.mu) require(*c.mu > 0, "--mu must be > 0" + got(*c.mu));
  if (c.lambda) require(*c.lambda >= 0, "--lambda must be >= 0" + got(*c.lambda));
  if (c.tau) require(*c.tau > 0, "--tau must be > 0" + got(*c.tau));
  if (c.nu) require(*c.nu > 0, "--nu must be > 0" + got(*c.nu));
  if (c.ef_tau) require(*c.ef_tau >= 1, "--ef-tau must be >= 1 (step-sizes only grow)" + got(*c.ef_tau));
  if (c.ef_nu) require(*c.ef_nu >= 1, "--ef-nu must be >= 1 (step-sizes only grow)" + got(*c.ef_nu));
  if (c.kappa) require(*c.kappa > 0, "--kappa must be > 0" + got(*c.kappa));
  if (c.inner_tol) require(*c.inner_tol > 0, "--inner-tol must be > 0" + got(*c.inner_tol));
  if (c.inner_max_iter)
    require(*c.inner_max_iter >= 1, "--inner-max-iter must be at least 1" + got(*c.inner_max_iter));
  require(c.threads >= 1, "--threads must be at least 1" + got(c.threads));
  require(c.sync_every >= 1, "--sync-every must be at least 1" + got(c.sync_every));
  require(c.checkpoint_every >= 0, "--checkpoint-every must be at least 0" + got(c.checkpoint_every));
  require(c.residual_bound >= 0, "--residual-bound must be at least 0" + got(c.residual_bound));
  require(c.heartbeat_ms >= 1, "--heartbeat-ms must be at least 1" + got(c.heartbeat_ms));
  require(c.peer_timeout_ms > c.heartbeat_ms, "--peer-timeout-ms must exceed --heartbeat-ms" + got(c.peer_timeout_ms));
  require(c.connect_timeout_ms >= 1, "--connect-timeout-ms must be at least 1" + got(c.connect_timeout_ms));
  require(c.spawn_workers || !c.token_file.empty() || c.parallel != parallel_mode::tcp,
          "--spawn-workers off needs --token-file (workers started elsewhere must know the secret)");
  require(c.max_restarts >= 0, "--max-restarts must be at least 0" + got(c.max_restarts));
  require(c.max_restarts == 0 || c.checkpoint_every > 0,
          "--max-restarts needs --checkpoint-every (restarts continue from a checkpoint)");
  require(c.metrics_every >= 1, "--metrics-every must be at least 1" + got(c.metrics_every));
  require(!c.out.empty(), "--out must name a directory");
}

std::string train_usage() {
  std::ostringstream out;
  out << "usage: radmm train [--config FILE] [--name value | --name=value ...]\n\n"
      << "Trains a residual MLP with RADMM. Flags override the config file; config files\n"
      << "use the same names without dashes (\"test-fraction = 0.2\", '#' comments).\n\n";
  const run_config defaults;
  std::size_t w = std::string("--config FILE").size();
  for (const auto& s : settings()) w = std::max(w, flag_help_name(s).size());
  auto line = [&](const std::string& flag, const std::string& meaning, const std::string& def) {
    out << "  " << flag << std::string(w - flag.size() + 2, ' ') << meaning;
    if (!def.empty()) out << " [" << def << "]";
    out << "\n";
  };
  line("--config FILE", "read settings from FILE (e.g. a run's config.txt) first", "");
  for (const auto& s : settings()) {
    const std::optional<std::string> v = s.show(defaults);
    std::string def = v ? (v->empty() ? "empty" : *v) : "preset";
    line(flag_help_name(s), s.meaning, "default: " + def);
  }
  line("--help", "print this help", "");
  return out.str();
}

}  // namespace radmm::coordinator
