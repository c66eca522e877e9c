#include "coordinator/cli.hpp"

#include "coordinator/checkpoint.hpp"

#include "coordinator/config.hpp"
#include "coordinator/fs_util.hpp"
#include "coordinator/inproc_run.hpp"
#include "coordinator/model_io.hpp"
#include "coordinator/process_run.hpp"
#include "coordinator/tcp_run.hpp"
#include "coordinator/training.hpp"
#include "core/data.hpp"
#include "core/npy.hpp"
#include "core/checkpoint.hpp"
#include "core/serial.hpp"
#include "core/updates.hpp"
#include "core/activation.hpp"
#include "protocol/transport.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace radmm::coordinator {

core::hyper_params run_config::resolve_hyper(core::activation act, int width_used) const {
  core::hyper_params hp = core::preset(preset, core::parse_algorithm(algorithm), act, layers, width_used);
  hp.var = core::parse_variant(variant);
  if (beta) hp.beta = *beta;
  if (mu) hp.mu = *mu;
  if (lambda) hp.lambda = *lambda;
  if (tau) hp.tau = *tau;
  if (nu) hp.nu = *nu;
  if (ef_tau) hp.ef_tau = *ef_tau;
  if (ef_nu) hp.ef_nu = *ef_nu;
  if (kappa) hp.kappa = *kappa;
  if (inner_tol) hp.inner_tol = *inner_tol;
  if (inner_max_iter) hp.inner_max_iter = *inner_max_iter;
  hp.validate();
  return hp;
}

namespace {

// SIGINT / SIGTERM: the first asks the run to stop at the next STEP boundary
// (workers stopped, shared memory removed, a checkpoint written if asked); a
// second aborts at once (still reaping workers and removing shared memory).
volatile std::sig_atomic_t stop_signals = 0;
extern "C" void on_stop_signal(int) { stop_signals = stop_signals + 1; }
int stop_signal() { return static_cast<int>(stop_signals); }
void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

const char* top_usage =
    "radmm: residual networks trained by ADMM (Xu, Li, Xing), one process per layer.\n"
    "\n"
    "usage:\n"
    "  radmm train [flags]                      train a model (radmm train --help)\n"
    "  radmm eval --model DIR --data FILE       mean squared error in the target's units\n"
    "  radmm predict --model DIR --data FILE --out FILE\n"
    "                                           one prediction per input row, as CSV\n"
    "  radmm --version\n"
    "\n"
    "exit codes: 0 ok, 1 runtime failure, 2 bad input or usage, 3 a worker failed, 4 the run diverged\n";

struct prepared {
  problem prob;
  model_files model;  // everything but W and metrics
};

// radmm's default step-sizes (README "Defaults"). The linearised W update (10)
// is a majorisation when tau_i >= mu psi_1^2 ||V_{i-1}||_2^2, and the V update
// (12) when nu_i >= mu (1 + psi_1 ||W_{i+1}||_2)^2; both scale with the data,
// so fixed numbers either crawl or diverge. The default takes the largest of
// these bounds over the layers at the initial point (Frobenius norms bound the
// spectral ones), scaled to the batch, and lets them expand by 1% per update.
void default_step_sizes(run_config& cfg, const problem& p) {
  const core::activation_bounds b = core::bounds_of(p.arch.act);
  const double psi1 = b.psi1;
  const double mu = cfg.mu ? *cfg.mu : p.hp.mu;
  const std::vector<core::mat> V = core::forward_all(p.arch, p.W0, p.X_train);
  const double n = static_cast<double>(p.X_train.cols());
  const double batch = cfg.batch_size > 0 && static_cast<double>(cfg.batch_size) < n ? static_cast<double>(cfg.batch_size) : n;
  double tau = 0, nu = 0;
  for (int i = 1; i < p.arch.layers; ++i) {
    tau = std::max(tau, mu * psi1 * psi1 * V[static_cast<std::size_t>(i - 1)].squaredNorm() * batch / n);
    const double w = p.W0[static_cast<std::size_t>(i + 1)].norm();
    nu = std::max(nu, mu * (1 + psi1 * w) * (1 + psi1 * w));
  }
  if (!cfg.tau) cfg.tau = tau;
  if (!cfg.nu) cfg.nu = nu;
  if (!cfg.ef_tau) cfg.ef_tau = 1.01;
  if (!cfg.ef_nu) cfg.ef_nu = 1.01;
}

prepared prepare(run_config& cfg) {
  core::dataset ds = cfg.data.empty()
                         ? core::builtin_dataset(cfg.dataset, cfg.samples, cfg.features, cfg.seed)
                         : core::split_target(core::read_csv(cfg.data), cfg.target, cfg.data);
  const core::split_indices split = core::make_split(ds.X.cols(), cfg.test_fraction, cfg.seed);
  core::mat X_train = core::take_columns(ds.X, split.train), Y_train = core::take_columns(ds.Y, split.train);
  core::mat X_test = core::take_columns(ds.X, split.test), Y_test = core::take_columns(ds.Y, split.test);
  prepared out;
  model_files& m = out.model;
  const bool scale = cfg.normalize == "minmax";
  m.x_scaler = scale ? core::minmax_scaler::fit(X_train) : core::minmax_scaler::identity(X_train.rows());
  m.y_scaler = scale ? core::minmax_scaler::fit(Y_train) : core::minmax_scaler::identity(Y_train.rows());
  problem& p = out.prob;
  p.X_train = m.x_scaler.transform(X_train);
  p.X_test = m.x_scaler.transform(X_test);
  p.Y_train = m.y_scaler.transform(Y_train);
  p.Y_test = m.y_scaler.transform(Y_test);
  if (cfg.bias) {
    p.X_train = core::add_bias_row(p.X_train);
    p.X_test = core::add_bias_row(p.X_test);
  }
  p.arch.layers = cfg.layers;
  p.arch.input_dim = static_cast<int>(p.X_train.rows());
  // Default width: the paper ties d to the input width, which leaves
  // small-feature data (Wine Quality: 11 inputs) too narrow to beat a linear model.
  p.arch.width = cfg.width > 0 ? cfg.width : std::max(p.arch.input_dim, 32);
  p.arch.output_dim = static_cast<int>(p.Y_train.rows());
  p.arch.act = core::parse_activation(cfg.activation);
  try {
    p.arch.validate();
  } catch (const std::invalid_argument& e) {
    throw config_error(e.what());
  }
  if (!cfg.init_from.empty()) {
    p.W0 = read_weights_dir(cfg.init_from, p.arch);
  } else {
    p.W0 = core::kaiming_normal(p.arch, cfg.seed);
    // Residual branches start small so deep ReLU stacks do not blow up: with
    // plain Kaiming the forward pass grows like (1 + c)^N.
    if (cfg.init == "residual")
      for (int i = 1; i < p.arch.layers; ++i) p.W0[static_cast<std::size_t>(i)] /= std::sqrt(static_cast<double>(p.arch.layers - 1));
  }
  try {
    if (cfg.preset == "default") {
      p.hp = cfg.resolve_hyper(p.arch.act, p.arch.width);
      default_step_sizes(cfg, p);
    }
    p.hp = cfg.resolve_hyper(p.arch.act, p.arch.width);
  } catch (const std::invalid_argument& e) {
    throw config_error(e.what());
  }
  m.arch = p.arch;
  m.bias = cfg.bias;
  m.feature_names = ds.feature_names;
  m.target_names = ds.target_names;
  return out;
}

std::string fmt(double x, const char* spec = "%.6g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, spec, x);
  return buf;
}

// Live progress on a terminal, periodic plain lines otherwise.
class progress {
 public:
  progress(long total, bool quiet) : total_(total), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}
  void operator()(const core::iteration_metrics& m) {
    if (quiet_) return;
    const double rate = m.seconds > 0 ? static_cast<double>(m.iteration) / m.seconds : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - m.iteration) / rate : 0.0;
    std::string line = "iter " + std::to_string(m.iteration) + "/" + std::to_string(total_) + "  J " + fmt(m.J) +
                       "  L " + fmt(m.L) + "  train " + fmt(m.mse_train) +
                       (std::isnan(m.mse_test) ? std::string() : "  test " + fmt(m.mse_test)) + "  " +
                       fmt(rate, "%.1f") + " it/s  eta " + fmt(eta, "%.0f") + "s";
    if (tty_) {
      std::cerr << "\r\033[K" << line << std::flush;
      if (m.iteration == total_) std::cerr << "\n";
    } else {
      const long every = std::max(1L, total_ / 10);
      if (m.iteration == 0 || m.iteration == total_ || m.iteration / every != last_ / every) std::cerr << line << "\n";
    }
    last_ = m.iteration;
  }

 private:
  long total_;
  bool quiet_;
  bool tty_;
  long last_ = -1;
};

std::string metrics_json(const core::iteration_metrics& m, double test_mse_units) {
  auto num = [](double x) { return std::isfinite(x) ? fmt(x, "%.17g") : std::string("null"); };
  return "{\"iteration\": " + std::to_string(m.iteration) + ", \"J\": " + num(m.J) + ", \"L\": " + num(m.L) +
         ", \"res_N\": " + num(m.res_N) + ", \"mse_train\": " + num(m.mse_train) + ", \"mse_test\": " +
         num(m.mse_test) + ", \"mse_test_target_units\": " + num(test_mse_units) + "}";
}

int cmd_train(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout << train_usage();
      return 0;
    }
  run_config cfg = parse_train_args(args);
  const bool resuming = !cfg.resume.empty();
  std::string config_text_at_start;
  if (resuming) {
    // Everything comes from the run's own config.txt; only how to watch the
    // run (quiet, restarts) may change.
    const std::string dir = cfg.resume;
    const bool quiet = cfg.quiet;
    const int restarts = cfg.max_restarts;
    config_text_at_start = core::read_file(dir + "/config.txt");
    cfg = run_config{};
    read_config_file(cfg, dir + "/config.txt");
    cfg.out = dir;
    cfg.quiet = quiet;
    if (restarts > 0) cfg.max_restarts = restarts;
    if (cfg.checkpoint_every <= 0) throw config_error(dir + "/config.txt: the run did not write checkpoints");
  }
  validate(cfg);
  if (!cfg.trace.empty() && cfg.parallel == parallel_mode::none)
    throw config_error("--trace records the messages of a parallel run; add --parallel inproc or shm");
  if (cfg.trace_payloads && cfg.trace.empty()) throw config_error("--trace-payloads needs --trace FILE");
  if (!resuming) check_output_dir(cfg.out, cfg.force);
  prepared prep = prepare(cfg);  // resolves data-dependent defaults into cfg
  problem& p = prep.prob;
  for (const std::string& w : p.hp.warnings(p.arch.act)) std::cerr << "radmm: warning: " << w << "\n";
  schedule s;
  s.iterations = cfg.iterations;
  s.batch_size = cfg.batch_size;
  s.updates_per_batch = cfg.updates_per_batch;
  s.seed = cfg.seed;
  s.metrics_every = cfg.metrics_every;
  s.sync_every = cfg.sync_every;
  s.residual_bound = cfg.residual_bound;
  Eigen::setNbThreads(cfg.threads);
  const bool checkpointing = cfg.checkpoint_every > 0 && cfg.optimizer == "admm";
  if (checkpointing && !resuming) {
    // Checkpoints live in the output directory, so it exists from the start,
    // with the resolved config that --resume reads back.
    config_text_at_start = to_config_text(cfg);
    std::filesystem::create_directories(checkpoint_root(cfg.out));
    write_file_atomic(cfg.out + "/config.txt", config_text_at_start);
  }
  run_control control;
  loaded_checkpoint resume_from;
  if (checkpointing) {
    control.checkpoint_root = checkpoint_root(cfg.out);
    control.checkpoint_every = cfg.checkpoint_every;
    control.config_digest = std::to_string(core::fnv1a64(config_text_at_start));
    control.checkpoint_on_stop = cfg.checkpoint_on_exit;
  }
  control.stop_requested = [] { return stop_signal() != 0; };
  auto load_checkpoint = [&]() -> bool {
    std::vector<std::string> skipped;
    auto c = load_latest_checkpoint(control.checkpoint_root, p.arch.layers, control.config_digest, &skipped);
    for (const auto& why : skipped) std::cerr << "radmm: skipping checkpoint: " << why << "\n";
    if (!c) return false;
    resume_from = std::move(*c);
    control.resume = &resume_from;
    return true;
  };
  if (resuming && !load_checkpoint())
    throw config_error(cfg.out + ": no complete checkpoint to resume from");
  if (!cfg.quiet) {
    std::cerr << "radmm: " << core::to_string(p.hp.algo) << " " << core::to_string(p.hp.var) << ", N = " << p.arch.layers
              << ", width " << p.arch.width << ", " << core::to_string(p.arch.act) << ", " << p.X_train.cols()
              << " train / " << p.X_test.cols() << " test samples, parallel " << to_string(cfg.parallel) << "\n";
    if (control.resume) std::cerr << "radmm: resuming from " << control.resume->dir << "\n";
  }
  progress show(cfg.iterations, cfg.quiet);
  metrics_callback cb = [&](const core::iteration_metrics& m) {
    if (!std::isfinite(m.L)) throw core::divergence_error("L", 0, m.iteration);
    show(m);
  };
  run_result r;
  std::vector<std::vector<double>> grad_norms;
  if (cfg.optimizer != "admm") {
    if (cfg.parallel != parallel_mode::none) throw config_error("--optimizer " + cfg.optimizer + " runs serially; drop --parallel");
    core::bp_params bp = core::bp_preset(core::parse_bp_optimizer(cfg.optimizer), p.arch.act, p.arch.layers, p.arch.width);
    if (cfg.lr) bp.lr = *cfg.lr;
    if (cfg.weight_decay) bp.weight_decay = *cfg.weight_decay;
    if (cfg.momentum) bp.momentum = *cfg.momentum;
    try {
      bp.validate();
    } catch (const std::invalid_argument& e) {
      throw config_error(e.what());
    }
    r = train_backprop(p, s, bp, cb, &grad_norms);
  } else {
    process_options popt;
    popt.abort_now = [] { return stop_signal() > 1; };
    popt.trace = cfg.trace;
    popt.trace_payloads = cfg.trace_payloads;
    for (int restarts = 0;; ++restarts) {
      try {
        switch (cfg.parallel) {
          case parallel_mode::none: r = train_serial(p, s, cb, &control); break;
          case parallel_mode::inproc: {
            inproc_options iopt;
            iopt.trace = cfg.trace;
            iopt.trace_payloads = cfg.trace_payloads;
            r = train_inproc(p, s, cb, iopt, &control);
            break;
          }
          case parallel_mode::shm: r = train_processes(p, s, cb, popt, &control); break;
          case parallel_mode::tcp: {
            tcp_run_options topt;
            topt.listen = cfg.listen;
            topt.token_file = cfg.token_file;
            topt.spawn_workers = cfg.spawn_workers;
            topt.worker_bind = cfg.worker_bind;
            topt.heartbeat = std::chrono::milliseconds(cfg.heartbeat_ms);
            topt.peer_timeout = std::chrono::milliseconds(cfg.peer_timeout_ms);
            topt.connect_timeout = std::chrono::milliseconds(cfg.connect_timeout_ms);
            r = train_tcp(p, s, cb, topt, &control);
            break;
          }
        }
        break;
      } catch (const process_error& e) {
        if (stop_signal() || restarts >= cfg.max_restarts) throw;
        // Tear-down is done (RAII); start fresh workers from the last checkpoint.
        const bool have = load_checkpoint();
        if (!have) control.resume = nullptr;
        std::cerr << "radmm: " << e.what() << "; restart " << restarts + 1 << " of " << cfg.max_restarts << " from "
                  << (have ? control.resume->dir : std::string("the start")) << "\n";
      }
    }
  }
  if (r.interrupted) {
    std::cerr << "radmm: interrupted";
    std::vector<std::string> skipped;
    if (checkpointing && load_latest_checkpoint(control.checkpoint_root, p.arch.layers, control.config_digest, &skipped))
      std::cerr << "; resume with: radmm train --resume " << cfg.out;
    std::cerr << "\n";
    return 130;
  }
  if (cfg.refit_output && cfg.optimizer == "admm") {
    const core::iteration_metrics refit = refit_output_layer(p, r.W);
    core::iteration_metrics& last = r.metrics.back();
    if (!cfg.quiet)
      std::cerr << "radmm: output refit: train MSE " << fmt(last.mse_train) << " -> " << fmt(refit.mse_train)
                << (p.X_test.cols() > 0 ? ", test MSE " + fmt(last.mse_test) + " -> " + fmt(refit.mse_test) : std::string())
                << "\n";
    last.J = refit.J;
    last.mse_train = refit.mse_train;
    last.mse_test = refit.mse_test;
  }
  // Test MSE in the target's own units (the saved scaling undone).
  double test_units = std::nan("");
  if (p.X_test.cols() > 0) {
    const core::mat pred = prep.model.y_scaler.inverse(core::predict(p.arch, r.W, p.X_test));
    const core::mat truth = prep.model.y_scaler.inverse(p.Y_test);
    test_units = (pred - truth).squaredNorm() / static_cast<double>(truth.cols());
  }
  model_files& m = prep.model;
  m.W = r.W;
  m.config_text = to_config_text(cfg);
  m.metrics_json = r.metrics.empty() ? "" : metrics_json(r.metrics.back(), test_units);
  std::string csv = core::metrics_csv_header() + "\n";
  for (const auto& row : r.metrics) csv += core::metrics_csv_row(row) + "\n";
  std::vector<std::pair<std::string, std::string>> extra = {{"metrics.csv", csv}, {"config.txt", m.config_text}};
  if (!grad_norms.empty()) {
    // Per-layer gradient norms at each recorded iteration: explosion shows here before it is a NaN.
    std::string g = "k";
    for (int i = 1; i <= p.arch.layers; ++i) g += ",grad_W" + std::to_string(i);
    g += "\n";
    for (const auto& row : grad_norms) {
      g += std::to_string(static_cast<long>(row[0]));
      for (std::size_t c = 1; c < row.size(); ++c) g += "," + fmt(row[c], "%.9g");
      g += "\n";
    }
    extra.emplace_back("grad_norms.csv", g);
  }
  if (!r.workers.empty()) {
    // Per worker: where the time went, and memory against the block's own bytes (Section VI-C).
    std::string w = "layer,compute_s,wait_s,send_s,messages_in,messages_out,block_bytes,peak_rss_kb\n";
    for (std::size_t i = 1; i < r.workers.size(); ++i) {
      const worker_report& x = r.workers[i];
      w += std::to_string(i) + "," + fmt(x.compute_s, "%.6f") + "," + fmt(x.wait_s, "%.6f") + "," +
           fmt(x.send_s, "%.6f") + "," + std::to_string(x.messages_in) + "," + std::to_string(x.messages_out) +
           "," + std::to_string(x.block_bytes) + "," + std::to_string(x.peak_rss_kb) + "\n";
    }
    extra.emplace_back("workers.csv", w);
    if (!cfg.quiet) {
      std::cerr << "radmm: per layer (compute / wait / send seconds, block MiB, peak RSS MiB):\n";
      for (std::size_t i = 1; i < r.workers.size(); ++i) {
        const worker_report& x = r.workers[i];
        std::cerr << "  layer " << i << ": " << fmt(x.compute_s, "%.3f") << " / " << fmt(x.wait_s, "%.3f") << " / "
                  << fmt(x.send_s, "%.3f") << ", " << fmt(static_cast<double>(x.block_bytes) / 1048576.0, "%.2f")
                  << " MiB, " << fmt(static_cast<double>(x.peak_rss_kb) / 1024.0, "%.1f") << " MiB\n";
      }
    }
  }
  if (checkpointing)
    write_model_files(cfg.out, m, extra);  // into the run's directory, model.json last
  else
    write_model_dir(cfg.out, m, extra, cfg.force);
  if (!cfg.quiet) {
    const auto& last = r.metrics.back();
    std::cerr << "radmm: done in " << fmt(r.seconds, "%.2f") << " s; train MSE " << fmt(last.mse_train)
              << (p.X_test.cols() > 0 ? ", test MSE " + fmt(last.mse_test) + " (" + fmt(test_units) + " in target units)"
                                      : std::string())
              << "; model written to " << cfg.out << "\n";
  }
  return 0;
}

struct model_args {
  std::string model, data, out;
};

model_args parse_model_args(const std::vector<std::string>& args, bool want_out, const char* cmd) {
  model_args a;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& f = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw config_error(f + " needs a value");
      return args[++i];
    };
    if (f == "--model") a.model = value();
    else if (f == "--data") a.data = value();
    else if (f == "--out" && want_out) a.out = value();
    else
      throw config_error(std::string(cmd) + ": unknown flag " + f + " (expected --model, --data" +
                         (want_out ? ", --out)" : ")"));
  }
  if (a.model.empty()) throw config_error(std::string("radmm ") + cmd + ": --model DIR is required");
  if (a.data.empty()) throw config_error(std::string("radmm ") + cmd + ": --data FILE is required");
  if (want_out && a.out.empty()) throw config_error("radmm predict: --out FILE is required");
  return a;
}

// Features of `t` in the model's order (by header name when the file has the
// model's feature names, else by position); targets when present.
void model_inputs(const model_files& m, const core::table& t, const std::string& path, core::mat& X, core::mat* Y) {
  const std::size_t nf = m.feature_names.size();
  std::vector<long> fcols, tcols;
  for (const auto& name : m.feature_names) {
    long found = -1;
    for (std::size_t c = 0; c < t.columns.size(); ++c)
      if (t.columns[c] == name) found = static_cast<long>(c);
    fcols.push_back(found);
  }
  for (const auto& name : m.target_names) {
    long found = -1;
    for (std::size_t c = 0; c < t.columns.size(); ++c)
      if (t.columns[c] == name) found = static_cast<long>(c);
    tcols.push_back(found);
  }
  const bool by_name = std::all_of(fcols.begin(), fcols.end(), [](long c) { return c >= 0; });
  if (!by_name) {
    // Positional: the features first, then (optionally) the targets.
    if (t.columns.size() != nf && t.columns.size() != nf + m.target_names.size())
      throw core::data_error(path + ": has " + std::to_string(t.columns.size()) + " columns; the model needs " +
                             std::to_string(nf) + " features (optionally followed by " +
                             std::to_string(m.target_names.size()) + " target column(s))");
    for (std::size_t c = 0; c < nf; ++c) fcols[c] = static_cast<long>(c);
    for (std::size_t c = 0; c < tcols.size(); ++c)
      tcols[c] = t.columns.size() > nf ? static_cast<long>(nf + c) : -1;
  }
  X.resize(static_cast<Eigen::Index>(nf), t.rows.rows());
  for (std::size_t c = 0; c < nf; ++c) X.row(static_cast<Eigen::Index>(c)) = t.rows.col(fcols[c]).transpose();
  if (Y) {
    if (std::any_of(tcols.begin(), tcols.end(), [](long c) { return c < 0; }))
      throw core::data_error(path + ": has no target column '" + m.target_names[0] + "' to evaluate against");
    Y->resize(static_cast<Eigen::Index>(tcols.size()), t.rows.rows());
    for (std::size_t c = 0; c < tcols.size(); ++c) Y->row(static_cast<Eigen::Index>(c)) = t.rows.col(tcols[c]).transpose();
  }
}

core::mat model_predict(const model_files& m, const core::mat& X_raw) {
  core::mat X = m.x_scaler.transform(X_raw);
  if (m.bias) X = core::add_bias_row(X);
  return m.y_scaler.inverse(core::predict(m.arch, m.W, X));
}

int cmd_eval(const std::vector<std::string>& args) {
  const model_args a = parse_model_args(args, false, "eval");
  const model_files m = read_model_dir(a.model);
  core::mat X, Y;
  model_inputs(m, core::read_csv(a.data), a.data, X, &Y);
  const core::mat pred = model_predict(m, X);
  const double mse = (pred - Y).squaredNorm() / static_cast<double>(Y.cols());
  std::cout << "mse " << fmt(mse, "%.10g") << "\nrows " << Y.cols() << "\n";
  return 0;
}

int cmd_predict(const std::vector<std::string>& args) {
  const model_args a = parse_model_args(args, true, "predict");
  const model_files m = read_model_dir(a.model);
  core::mat X;
  model_inputs(m, core::read_csv(a.data), a.data, X, nullptr);
  const core::mat pred = model_predict(m, X);
  std::ostringstream os;
  for (std::size_t c = 0; c < m.target_names.size(); ++c) os << (c ? "," : "") << m.target_names[c];
  os << "\n";
  for (Eigen::Index j = 0; j < pred.cols(); ++j) {
    for (Eigen::Index r = 0; r < pred.rows(); ++r) os << (r ? "," : "") << fmt(pred(r, j), "%.17g");
    os << "\n";
  }
  write_file_atomic(a.out, os.str());
  return 0;
}

}  // namespace

int run_cli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << top_usage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "radmm " << RADMM_VERSION << "\n";
    return 0;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  try {
    if (cmd == "train") {
      install_stop_handlers();
      return cmd_train(args);
    }
    if (cmd == "eval") return cmd_eval(args);
    if (cmd == "predict") return cmd_predict(args);
    std::cerr << "radmm: unknown command '" << cmd << "'\n" << top_usage;
    return 2;
  } catch (const config_error& e) {
    std::cerr << "radmm: " << e.what() << "\n";
    return 2;
  } catch (const core::data_error& e) {
    std::cerr << "radmm: " << e.what() << "\n";
    return 2;
  } catch (const model_error& e) {
    std::cerr << "radmm: " << e.what() << "\n";
    return 2;
  } catch (const output_error& e) {
    std::cerr << "radmm: " << e.what() << "\n";
    return 2;
  } catch (const process_error& e) {
    if (stop_signal()) {
      std::cerr << "radmm: interrupted\n";
      return 130;
    }
    std::cerr << "radmm: parallel run failed: " << e.what() << "\n";
    return 3;
  } catch (const core::divergence_error& e) {
    std::cerr << "radmm: the run " << e.what() << " (layer " << e.layer << ", block " << e.block
              << "); try larger --tau/--nu or a smaller --beta\n";
    return 4;
  } catch (const std::exception& e) {
    std::cerr << "radmm: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace radmm::coordinator
