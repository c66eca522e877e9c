#include "coordinator/training.hpp"

#include "coordinator/checkpoint.hpp"
#include "core/serial.hpp"
#include "core/updates.hpp"
#include "worker/driver.hpp"
#include "worker/layer_setup.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>

namespace radmm::coordinator {

using core::mat;
namespace pr = protocol;

double step_size_for(double initial, double expansion, long updates) {
  double t = initial;
  for (long j = 1; j < updates; ++j) t *= expansion;
  return t;
}

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// One STEP of the schedule (serial and parallel walk the same list).
struct step_plan {
  std::vector<std::int64_t> columns;  // empty: every column
  long first_update = 0;              // updates done before this STEP
  long updates = 0;
  bool reset = false;
  bool initial_metrics = false;
  bool metrics_at_end = false;
  bool checkpoint_after = false;
};

struct plan {
  std::vector<step_plan> steps;
  long batches_per_epoch = 1;
  long metrics_every = 0;  // per-update rule (full batch only)

  // The STEP that starts after `updates` updates (where a checkpoint resumes).
  std::size_t step_starting_at(long updates) const {
    for (std::size_t b = 0; b < steps.size(); ++b)
      if (steps[b].first_update == updates && (b == 0 || steps[b].first_update != steps[b - 1].first_update))
        return b;
    throw std::invalid_argument("the checkpoint at " + std::to_string(updates) +
                                " updates is not a STEP boundary of this run's schedule");
  }
};

plan make_plan(const schedule& s, std::int64_t n, bool parallel, long checkpoint_every) {
  plan pl;
  if (s.iterations < 1) throw std::invalid_argument("--iterations must be >= 1");
  if (s.full_batch(n)) {
    pl.metrics_every = s.metrics_every;
    long chunk = parallel ? std::max(1L, s.sync_every) : s.iterations;
    if (checkpoint_every > 0) chunk = parallel ? std::gcd(chunk, checkpoint_every) : checkpoint_every;
    for (long done = 0; done < s.iterations; done += chunk) {
      step_plan st;
      st.first_update = done;
      st.updates = std::min(chunk, s.iterations - done);
      st.reset = done == 0;
      st.initial_metrics = done == 0;
      st.metrics_at_end = done + st.updates == s.iterations;
      st.checkpoint_after = checkpoint_every > 0 && (done + st.updates) % checkpoint_every == 0 && !st.metrics_at_end;
      pl.steps.push_back(std::move(st));
    }
    return pl;
  }
  const long u = std::max(1L, s.updates_per_batch);
  const long epochs = (s.iterations + u - 1) / u;
  long done = 0;
  for (long e = 0; e < epochs; ++e) {
    const long updates = std::min(u, s.iterations - e * u);
    auto batches = core::epoch_batches(n, s.batch_size, s.seed, e);
    pl.batches_per_epoch = static_cast<long>(batches.size());
    for (std::size_t b = 0; b < batches.size(); ++b) {
      step_plan st;
      st.columns = std::move(batches[b]);
      st.first_update = done;
      st.updates = updates;
      st.reset = true;
      st.initial_metrics = e == 0 && b == 0;
      st.metrics_at_end = b + 1 == batches.size();
      // Epoch ends only: the next STEP resets V, U and Lambda, so a checkpoint
      // there needs the weights and step-sizes alone.
      st.checkpoint_after = checkpoint_every > 0 && st.metrics_at_end && e + 1 < epochs &&
                            ((e + 1) * u) / checkpoint_every > (e * u) / checkpoint_every;
      done += updates;
      pl.steps.push_back(std::move(st));
    }
  }
  return pl;
}

// Turns the per-layer terms of one recorded point into a metrics row.
core::iteration_metrics finish_row(const problem& p, const plan& pl, long updates,
                                   const std::vector<core::layer_terms>& terms) {
  core::iteration_metrics m = core::assemble_metrics(terms, p.hp.algo, p.hp.lambda, p.hp.mu, p.hp.beta,
                                                     p.X_train.cols(), p.X_test.cols());
  m.iteration = updates / pl.batches_per_epoch;
  m.tau1 = updates == 0 ? p.hp.tau : step_size_for(p.hp.tau, p.hp.ef_tau, updates);
  m.nu1 = updates == 0 ? p.hp.nu : step_size_for(p.hp.nu, p.hp.ef_nu, updates);
  return m;
}

// Residuals growing past the bound are divergence too, named by layer.
void check_residuals(const std::vector<core::layer_terms>& terms, double bound, long iteration) {
  if (bound <= 0) return;
  char reason[96];
  for (std::size_t i = 1; i < terms.size(); ++i) {
    const double r = std::sqrt(std::max(terms[i].penalty_sq, terms[i].coupling_sq));
    if (r > bound) {
      std::snprintf(reason, sizeof reason, "has a constraint residual %.3g above the bound %.3g", r, bound);
      throw core::divergence_error("residual", static_cast<int>(i), iteration, reason);
    }
  }
}

void add_forward(const problem& p, const core::weight_set& W, std::vector<core::layer_terms>& terms) {
  core::add_forward_terms(p.arch, W, p.X_train, p.Y_train, false, terms);
  if (p.X_test.cols() > 0) core::add_forward_terms(p.arch, W, p.X_test, p.Y_test, true, terms);
}

}  // namespace

core::iteration_metrics forward_metrics(const problem& p, const core::weight_set& W) {
  std::vector<core::layer_terms> terms(static_cast<std::size_t>(p.arch.layers) + 1);
  for (int i = 1; i <= p.arch.layers; ++i)
    terms[static_cast<std::size_t>(i)].weight_sq = core::sq_norm(W[static_cast<std::size_t>(i)]);
  add_forward(p, W, terms);
  return core::assemble_metrics(terms, p.hp.algo, p.hp.lambda, p.hp.mu, p.hp.beta, p.X_train.cols(),
                                p.X_test.cols());
}

core::iteration_metrics refit_output_layer(const problem& p, core::weight_set& W) {
  // (8) with V_N = Y, Lambda = 0, beta = 1, on the plain forward activations.
  const std::size_t N = static_cast<std::size_t>(p.arch.layers);
  core::mat F = p.X_train;
  for (std::size_t i = 1; i < N; ++i) F = core::block_forward(p.arch.act, W[i], F);
  W[N] = core::update_W_ridge(p.Y_train, core::mat(), F, 1.0, p.hp.lambda);
  return forward_metrics(p, W);
}

run_result train_serial(const problem& p, const schedule& s, const metrics_callback& on_metrics,
                        const run_control* control) {
  const auto t0 = clock_type::now();
  const long every = control && !control->checkpoint_root.empty() ? control->checkpoint_every : 0;
  const plan pl = make_plan(s, p.X_train.cols(), false, every);
  core::serial_engine engine(p.arch, p.hp, p.W0);
  run_result r;
  std::size_t first = 0;
  if (control && control->resume) {
    const loaded_checkpoint& c = *control->resume;
    first = pl.step_starting_at(c.updates);
    engine.restore_blocks(c.blocks, p.X_train, p.Y_train, !pl.steps[first].reset);
    r.metrics = c.metrics;
  }
  auto emit = [&](std::vector<core::layer_terms>& terms) {
    check_residuals(terms, s.residual_bound, engine.state().iteration / pl.batches_per_epoch);
    add_forward(p, engine.weights(), terms);
    core::iteration_metrics m = finish_row(p, pl, engine.state().iteration, terms);
    m.seconds = seconds_since(t0);
    r.metrics.push_back(m);
    if (on_metrics) on_metrics(m);
  };
  auto checkpoint = [&](std::size_t next_step) {
    const long k = engine.state().iteration;
    const std::string dir = checkpoint_dir(control->checkpoint_root, k);
    prepare_checkpoint_dir(dir);
    std::vector<checkpoint_file> files;
    const auto blocks = engine.save_blocks();
    for (int i = 1; i <= p.arch.layers; ++i) files.push_back(write_block_file(dir, blocks[static_cast<std::size_t>(i)]));
    complete_checkpoint(control->checkpoint_root, dir, k, next_step, p.arch.layers, control->config_digest, files,
                        r.metrics);
  };
  for (std::size_t b = first; b < pl.steps.size(); ++b) {
    const step_plan& st = pl.steps[b];
    if (control && control->stop_requested && control->stop_requested()) {
      if (control->checkpoint_on_stop && !control->checkpoint_root.empty() && b > first) checkpoint(b);
      r.interrupted = true;
      break;
    }
    if (st.reset) {
      if (st.columns.empty())
        engine.set_batch(p.X_train, p.Y_train);
      else
        engine.set_batch(core::take_columns(p.X_train, st.columns), core::take_columns(p.Y_train, st.columns));
      if (st.initial_metrics) {
        auto terms = core::admm_terms(p.arch, p.hp.algo, engine.state());
        emit(terms);
      }
    }
    for (long j = 0; j < st.updates; ++j) {
      const long next = engine.state().iteration + 1;
      const bool record = (pl.metrics_every > 0 && next % pl.metrics_every == 0) ||
                          (j + 1 == st.updates && st.metrics_at_end);
      std::vector<core::layer_terms> terms;
      engine.iterate(record ? &terms : nullptr);
      if (record) emit(terms);
    }
    if (st.checkpoint_after && every > 0) checkpoint(b + 1);
  }
  r.W = engine.weights();
  r.updates = engine.state().iteration;
  r.seconds = seconds_since(t0);
  return r;
}

run_result train_backprop(const problem& p, const schedule& s, const core::bp_params& bp,
                          const metrics_callback& on_metrics, std::vector<std::vector<double>>* grad_norms) {
  const auto t0 = clock_type::now();
  const plan pl = make_plan(s, p.X_train.cols(), false, 0);
  core::weight_set W = p.W0;
  core::bp_trainer trainer(p.arch, bp);
  run_result r;
  long updates = 0;
  std::vector<double> last_norms;
  auto emit = [&]() {
    core::iteration_metrics m = forward_metrics(p, W);
    m.iteration = updates / pl.batches_per_epoch;
    m.J_admm = m.res_N = m.res_U = m.res_pen = std::nan("");
    m.L = m.J;
    m.tau1 = bp.lr;
    m.nu1 = std::nan("");
    m.seconds = seconds_since(t0);
    r.metrics.push_back(m);
    if (grad_norms) {
      std::vector<double> row{static_cast<double>(m.iteration)};
      row.insert(row.end(), last_norms.begin() + (last_norms.empty() ? 0 : 1), last_norms.end());
      grad_norms->push_back(std::move(row));
    }
    if (on_metrics) on_metrics(m);
  };
  for (const step_plan& st : pl.steps) {
    core::mat Xb, Yb;
    const bool all = st.columns.empty();
    if (!all) {
      Xb = core::take_columns(p.X_train, st.columns);
      Yb = core::take_columns(p.Y_train, st.columns);
    }
    const core::mat& X = all ? p.X_train : Xb;
    const core::mat& Y = all ? p.Y_train : Yb;
    if (st.initial_metrics) emit();
    const double scale = core::mse_loss_scale(Y.rows(), Y.cols());
    for (long j = 0; j < st.updates; ++j) {
      const core::bp_gradient g = core::backprop_gradient(p.arch, W, X, Y, scale);
      trainer.step(W, g.grad);
      last_norms = trainer.last_grad_norms();
      ++updates;
      const bool record = (pl.metrics_every > 0 && updates % pl.metrics_every == 0) ||
                          (j + 1 == st.updates && st.metrics_at_end);
      if (record) emit();
    }
  }
  r.W = W;
  r.updates = updates;
  r.seconds = seconds_since(t0);
  return r;
}

namespace {

// Rebuilds the core::divergence_error a worker reported ("diverged: V_3 holds
// NaN or Inf after iteration 17").
core::divergence_error diverged_in_worker(const std::string& text) {
  const std::string body = text.substr(std::string("diverged: ").size());
  const auto us = body.find('_');
  const auto sp = body.find(' ');
  const auto last = body.rfind(' ');
  std::string block = us == std::string::npos ? "?" : body.substr(0, us);
  int layer = 0;
  long iteration = 0;
  try {
    layer = std::stoi(body.substr(us + 1, sp - us - 1));
    iteration = std::stol(body.substr(last + 1));
  } catch (...) {
  }
  return core::divergence_error(block, layer, iteration);
}

// Coordinator side of the protocol: waits for messages with a deadline,
// turning ERROR messages and dead workers into exceptions.
class coordinator_link {
 public:
  coordinator_link(pr::transport& t, int layers, const parallel_options& opt)
      : t_(t), layers_(layers), opt_(opt) {}

  pr::message wait_for(pr::msg_type type, const std::string& what) {
    const auto start = clock_type::now();
    for (;;) {
      std::optional<pr::message> m = t_.receive(opt_.poll);
      if (!m) {
        if (opt_.health_check) opt_.health_check();
        if (clock_type::now() - start > opt_.deadline)
          throw pr::timeout_error("no " + std::string(pr::to_string(type)) + " within " +
                                  std::to_string(opt_.deadline.count()) + " ms while waiting for " + what);
        continue;
      }
      if (m->type == pr::msg_type::error) {
        // A worker's divergence is the run's divergence, not a protocol fault.
        const std::string prefix = "diverged: ";
        if (m->text.rfind(prefix, 0) == 0) throw diverged_in_worker(m->text);
        throw pr::protocol_error("layer " + std::to_string(m->sender) + " failed: " + m->text);
      }
      if (m->type != type)
        throw pr::protocol_error("expected " + std::string(pr::to_string(type)) + " while waiting for " + what +
                                 ", got " + pr::to_string(m->type) + " from node " + std::to_string(m->sender));
      if (m->sender < 1 || m->sender > layers_)
        throw pr::protocol_error(std::string(pr::to_string(type)) + " from unknown node " + std::to_string(m->sender));
      return std::move(*m);
    }
  }

  // One message of `type` from every layer, indexed by layer.
  std::vector<pr::message> gather(pr::msg_type type, const std::string& what) {
    std::vector<pr::message> got(static_cast<std::size_t>(layers_) + 1);
    std::vector<bool> seen(static_cast<std::size_t>(layers_) + 1, false);
    for (int remaining = layers_; remaining > 0; --remaining) {
      pr::message m = wait_for(type, what);
      const auto i = static_cast<std::size_t>(m.sender);
      if (seen[i]) throw pr::protocol_error("layer " + std::to_string(m.sender) + " sent " + pr::to_string(type) + " twice");
      seen[i] = true;
      got[i] = std::move(m);
    }
    return got;
  }

  void send(pr::message m) { t_.send(m); }

 private:
  pr::transport& t_;
  int layers_;
  parallel_options opt_;
};

}  // namespace

run_result train_parallel(const problem& p, const schedule& s, pr::transport& coordinator,
                          const parallel_options& opt, const metrics_callback& on_metrics,
                          const run_control* control) {
  const auto t0 = clock_type::now();
  const int N = p.arch.layers;
  const long every = control && !control->checkpoint_root.empty() ? control->checkpoint_every : 0;
  const plan pl = make_plan(s, p.X_train.cols(), true, every);
  const loaded_checkpoint* resume = control ? control->resume : nullptr;
  const std::size_t first = resume ? pl.step_starting_at(resume->updates) : 0;
  coordinator_link link(coordinator, N, opt);
  link.gather(pr::msg_type::hello, "workers to start");

  // INIT: each layer gets its own block and only the data it needs.
  auto shared = [](const mat& m) { return pr::matrix_view(std::shared_ptr<const mat>(std::shared_ptr<const mat>(), &m)); };
  for (int i = 1; i <= N; ++i) {
    worker::layer_setup setup;
    setup.arch = p.arch;
    setup.hp = p.hp;
    setup.layer = i;
    setup.total_iterations = s.iterations;
    setup.metrics_every = pl.metrics_every;
    setup.n_train = p.X_train.cols();
    setup.n_test = p.X_test.cols();
    pr::message init;
    init.type = pr::msg_type::init;
    init.sender = pr::coordinator_id;
    init.receiver = i;
    init.text = worker::encode_layer_setup(setup);
    // A resumed run: each worker reads its own block of the checkpoint.
    if (resume) init.text += "restore_from=" + resume->dir + "/layer-" + std::to_string(i) + ".bin\n";
    init.payloads.push_back({pr::payload_kind::W, i, shared(p.W0[static_cast<std::size_t>(i)])});
    if (i == 1) {
      init.payloads.push_back({pr::payload_kind::X, 0, shared(p.X_train)});
      if (p.X_test.cols() > 0) init.payloads.push_back({pr::payload_kind::X_test, 0, shared(p.X_test)});
    }
    if (i == N) {
      init.payloads.push_back({pr::payload_kind::Y, 0, shared(p.Y_train)});
      if (p.X_test.cols() > 0) init.payloads.push_back({pr::payload_kind::Y_test, 0, shared(p.Y_test)});
    }
    link.send(std::move(init));
  }
  link.gather(pr::msg_type::ready, "workers to load their blocks");

  run_result r;
  long updates = resume ? resume->updates : 0;
  if (resume) r.metrics = resume->metrics;
  for (std::size_t b = first; b < pl.steps.size(); ++b) {
    step_plan st = pl.steps[b];
    bool stopping = false;
    if (control && control->stop_requested && control->stop_requested()) {
      // Stop at this STEP boundary; with checkpoint_on_stop, an empty STEP
      // makes every worker write its block first.
      if (!(control->checkpoint_on_stop && every > 0 && b > first)) {
        r.interrupted = true;
        break;
      }
      stopping = true;
      st.updates = 0;
      st.reset = st.initial_metrics = st.metrics_at_end = false;
      st.columns.clear();
      st.checkpoint_after = true;
    }
    const bool last = b + 1 == pl.steps.size() && !stopping;
    std::uint32_t flags = 0;
    if (st.reset) flags |= pr::step_flags::reset_state;
    if (st.initial_metrics) flags |= pr::step_flags::initial_metrics;
    if (st.metrics_at_end) flags |= pr::step_flags::want_metrics;
    if (last) flags |= pr::step_flags::want_weights;
    std::string ckpt_dir;
    if (st.checkpoint_after && every > 0) {
      flags |= pr::step_flags::checkpoint;
      ckpt_dir = checkpoint_dir(control->checkpoint_root, updates + st.updates);
      prepare_checkpoint_dir(ckpt_dir);
    }
    std::shared_ptr<const mat> cols;
    if (!st.columns.empty()) {
      mat c(static_cast<Eigen::Index>(st.columns.size()), 1);
      for (std::size_t j = 0; j < st.columns.size(); ++j) c(static_cast<Eigen::Index>(j), 0) = static_cast<double>(st.columns[j]);
      cols = std::make_shared<const mat>(std::move(c));
    }
    for (int i = 1; i <= N; ++i) {
      pr::message step;
      step.type = pr::msg_type::step;
      step.sender = pr::coordinator_id;
      step.receiver = i;
      step.batch = static_cast<std::int64_t>(b);
      step.iteration = updates;
      step.count = st.updates;
      step.flags = flags;
      step.text = ckpt_dir;
      if (cols) step.payloads.push_back({pr::payload_kind::batch_columns, 0, pr::matrix_view(cols)});
      link.send(std::move(step));
    }
    std::vector<pr::message> syncs = link.gather(pr::msg_type::sync, "STEP " + std::to_string(b) + " to finish");
    updates += st.updates;
    // Merge the recorded points: each layer reports (k, terms) columns; every
    // layer records at the same points, in the same order.
    const pr::payload* reported = syncs[1].find(pr::payload_kind::metrics);
    const Eigen::Index points = reported ? reported->matrix.cols() : 0;
    for (Eigen::Index c = 0; c < points; ++c) {
      std::vector<core::layer_terms> terms(static_cast<std::size_t>(N) + 1);
      long k = -1;
      for (int i = 1; i <= N; ++i) {
        const pr::payload* pm = syncs[static_cast<std::size_t>(i)].find(pr::payload_kind::metrics);
        if (!pm || pm->matrix.cols() != points || pm->matrix.rows() != 1 + core::layer_terms::fields)
          throw pr::protocol_error("layer " + std::to_string(i) + " reported metrics of another shape than layer 1");
        const auto v = pm->matrix.view();
        const long ki = static_cast<long>(v(0, c));
        if (i == 1) k = ki;
        else if (ki != k) throw pr::protocol_error("layer " + std::to_string(i) + " reported iteration " + std::to_string(ki) + ", layer 1 " + std::to_string(k));
        terms[static_cast<std::size_t>(i)] = core::layer_terms::from_array(v.col(c).data() + 1);
      }
      check_residuals(terms, s.residual_bound, k / pl.batches_per_epoch);
      core::iteration_metrics m = finish_row(p, pl, k, terms);
      m.seconds = seconds_since(t0);
      r.metrics.push_back(m);
      if (on_metrics) on_metrics(m);
    }
    if (!ckpt_dir.empty()) {
      std::vector<checkpoint_file> files;
      for (int i = 1; i <= N; ++i) files.push_back(parse_block_report(syncs[static_cast<std::size_t>(i)].text, i));
      complete_checkpoint(control->checkpoint_root, ckpt_dir, updates, stopping ? b : b + 1, N, control->config_digest,
                          files, r.metrics);
    }
    if (stopping) {
      r.interrupted = true;
      break;
    }
    if (last) {
      r.W.assign(static_cast<std::size_t>(N) + 1, mat());
      for (int i = 1; i <= N; ++i) {
        const pr::payload* pw = syncs[static_cast<std::size_t>(i)].find(pr::payload_kind::W);
        if (!pw) throw pr::protocol_error("layer " + std::to_string(i) + " sent no weights in its last SYNC");
        r.W[static_cast<std::size_t>(i)] = pw->matrix.view();
      }
      core::check_shapes(p.arch, r.W);
    }
  }
  for (int i = 1; i <= N; ++i) {
    pr::message quit;
    quit.type = pr::msg_type::quit;
    quit.sender = pr::coordinator_id;
    quit.receiver = i;
    link.send(std::move(quit));
  }
  const std::vector<pr::message> byes = link.gather(pr::msg_type::bye, "workers to quit");
  r.workers.assign(static_cast<std::size_t>(N) + 1, worker_report{});
  for (int i = 1; i <= N; ++i) {
    const worker::driver_stats st = worker::driver_stats::from_text(byes[static_cast<std::size_t>(i)].text);
    worker_report& w = r.workers[static_cast<std::size_t>(i)];
    w.compute_s = static_cast<double>(st.compute_ns) * 1e-9;
    w.wait_s = static_cast<double>(st.wait_ns) * 1e-9;
    w.send_s = static_cast<double>(st.send_ns) * 1e-9;
    w.messages_in = static_cast<long>(st.messages_in);
    w.messages_out = static_cast<long>(st.messages_out);
    w.block_bytes = st.block_bytes;
    w.peak_rss_kb = st.peak_rss_kb;
  }
  r.updates = updates;
  r.seconds = seconds_since(t0);
  return r;
}

}  // namespace radmm::coordinator
