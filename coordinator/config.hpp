#pragma once
// The full configuration of a `radmm train` run: command-line flags, optionally
// a config file (same keys, "key = value" per line, '#' comments), resolved and
// validated. The resolved config is saved with the run's outputs
// (`config.txt`) so `radmm train --config OUT/config.txt` repeats it exactly.
#include "core/hyper.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace radmm::coordinator {

// A user error in flags or config: the message names the flag or file:line.
struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class parallel_mode { none, inproc, shm, tcp };
parallel_mode parse_parallel(const std::string& s);  // "none"|"off"|"inproc"|"shm"|"tcp"
std::string to_string(parallel_mode m);

struct run_config {
  // data
  std::string data;              // CSV path; empty: use `dataset`
  std::string target = "-1";     // target column name or index (default: last)
  std::string dataset = "teacher";  // built-in: teacher | oscillating
  int samples = 512;             // built-in data: rows
  int features = 8;              // built-in data: inputs
  double test_fraction = 0.2;
  std::string normalize = "minmax";  // minmax | none
  bool bias = true;              // --bias on|off: append a constant input feature
  // model
  int layers = 3;                // N
  int width = 0;                 // 0: equal to the input width d0
  std::string activation = "relu";
  std::uint64_t seed = 1;
  std::string init = "residual";  // residual | kaiming
  std::string init_from;         // directory with W_1.npy .. W_N.npy
  // optimisation
  std::string algorithm = "2s";  // 2s | 3s
  std::string variant = "linearized";
  bool refit_output = true;        // exact ridge refit of W_N on the forward features (README "Defaults")
  std::string optimizer = "admm";  // admm | sgd | sgdm | adam
  std::optional<double> lr, weight_decay, momentum;  // backprop; unset: Appendix IX-C preset
  std::string preset = "default";
  int iterations = 100;
  std::int64_t batch_size = 0;   // 0: full batch
  int updates_per_batch = 1;
  // hyper-parameters; unset means "from the preset"
  std::optional<double> beta, mu, lambda, tau, nu, ef_tau, ef_nu, kappa;
  std::optional<double> inner_tol;
  std::optional<int> inner_max_iter;
  // execution
  int threads = 1;
  parallel_mode parallel = parallel_mode::none;
  int sync_every = 10;           // full batch: iterations per STEP in a parallel run
  int metrics_every = 1;         // compute metrics every M iterations (and the last)
  // --parallel tcp (docs/multi-host.md)
  std::string listen = "127.0.0.1:0";  // HOST:PORT (HOST: address, name or interface)
  std::string token_file;              // shared secret; empty: random, spawned workers only
  bool spawn_workers = true;           // off: wait for workers started by ssh/srun/mpirun
  std::string worker_bind;             // address or interface for spawned workers
  int heartbeat_ms = 1000;
  int peer_timeout_ms = 10000;
  int connect_timeout_ms = 60000;
  double residual_bound = 1e10;  // a residual above this stops the run as diverged; 0: off
  int checkpoint_every = 0;      // 0: no checkpoints
  std::string resume;            // --resume DIR
  int max_restarts = 0;
  bool checkpoint_on_exit = false;
  std::string out = "radmm-out";
  bool quiet = false;
  bool force = false;            // overwrite an existing --out directory
  std::string trace;             // --trace FILE (parallel runs)
  bool trace_payloads = false;

  core::hyper_params resolve_hyper(core::activation act, int width_used) const;
};

// Parses `radmm train` arguments (argv after "train"). A `--config FILE` is read
// first, flags override it. Throws config_error.
run_config parse_train_args(const std::vector<std::string>& args);
// Applies one "key = value" (or flag without dashes); `where` names the source
// ("--beta" or "cfg.txt:12") for errors.
void apply_setting(run_config& cfg, const std::string& key, const std::string& value,
                   const std::string& where);
// Reads a config file into cfg.
void read_config_file(run_config& cfg, const std::string& path);
// The resolved config as "key = value" lines, every key present.
std::string to_config_text(const run_config& cfg);
// Semantic checks (N >= 2, beta > 0, known activation, ...); throws config_error
// naming the flag.
void validate(const run_config& cfg);
// Help text for `radmm train --help`.
std::string train_usage();
// True when args ask for help (--help or -h), which parse_train_args does not accept.
bool wants_help(const std::vector<std::string>& args);

}  // namespace radmm::coordinator
