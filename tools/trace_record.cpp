#include "tools/trace_record.hpp"

#include "core/activation.hpp"
#include "core/rng.hpp"
#include "protocol/inproc.hpp"
#include "protocol/trace.hpp"
#include "worker/driver.hpp"

#include <algorithm>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace radmm::tools {

coordinator::problem make_demo_problem(const demo_options& o) {
  coordinator::problem p;
  const int width = o.width > 0 ? o.width : o.features;
  p.arch = core::architecture{o.layers, o.features, width, o.outputs, core::parse_activation(o.activation)};
  p.arch.validate();
  const core::algorithm algo = core::parse_algorithm(o.algorithm);
  p.hp = core::preset("default", algo, p.arch.act, o.layers, width);
  p.hp.var = core::parse_variant(o.variant);
  p.hp.ef_tau = 1.01;
  p.hp.ef_nu = 1.02;
  p.hp.inner_max_iter = 20;
  core::rng gen(o.seed);
  auto fill = [&](core::mat& m, Eigen::Index r, Eigen::Index c) {
    m.resize(r, c);
    for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] = gen.uniform(-1, 1);
  };
  fill(p.X_train, o.features, o.samples);
  fill(p.X_test, o.features, o.test_samples);
  // Targets from a random teacher of the same shape, so there is something to learn.
  const core::weight_set teacher = core::kaiming_normal(p.arch, o.seed + 7);
  p.Y_train = core::predict(p.arch, teacher, p.X_train);
  p.Y_test = core::predict(p.arch, teacher, p.X_test);
  p.W0 = core::kaiming_normal(p.arch, o.seed + 1);
  // Proximal weights at least the majorisation bounds of README "Defaults"
  // (tau_i >= mu psi_1^2 ||V_{i-1}||^2, nu_i >= mu (1 + psi_1 ||W_{i+1}||)^2, over
  // the batch), and at least the worker tests' 100.
  const double psi1 = core::bounds_of(p.arch.act).psi1;
  const std::vector<core::mat> V = core::forward_all(p.arch, p.W0, p.X_train);
  const double n = static_cast<double>(o.samples);
  const double batch = o.batch_size > 0 && static_cast<double>(o.batch_size) < n ? static_cast<double>(o.batch_size) : n;
  double tau = 100, nu = 100;
  for (int i = 1; i < o.layers; ++i) {
    tau = std::max(tau, p.hp.mu * psi1 * psi1 * V[static_cast<std::size_t>(i - 1)].squaredNorm() * batch / n);
    const double w = p.W0[static_cast<std::size_t>(i + 1)].norm();
    nu = std::max(nu, p.hp.mu * (1 + psi1 * w) * (1 + psi1 * w));
  }
  p.hp.tau = tau;
  p.hp.nu = nu;
  p.hp.validate();
  return p;
}

coordinator::schedule make_demo_schedule(const demo_options& o) {
  coordinator::schedule s;
  s.iterations = o.iterations;
  s.batch_size = o.batch_size;
  s.updates_per_batch = o.updates_per_batch;
  s.sync_every = o.sync_every;
  s.metrics_every = o.metrics_every;
  s.seed = o.seed;
  return s;
}

coordinator::run_result train_inproc_recorded(const coordinator::problem& p, const coordinator::schedule& s,
                                              const recording& rec) {
  const int N = p.arch.layers;
  // writers[n]: the stream node n records into (one shared, or one per node).
  std::vector<std::shared_ptr<protocol::trace_writer>> writers(static_cast<std::size_t>(N) + 1);
  std::vector<std::string> parts;
  if (!rec.path.empty()) {
    if (rec.per_node_streams) {
      for (int n = 0; n <= N; ++n) {
        parts.push_back(protocol::trace_part_path(rec.path, n));
        writers[static_cast<std::size_t>(n)] = std::make_shared<protocol::trace_writer>(
            parts.back(), protocol::trace_options{rec.payloads, n, static_cast<std::int32_t>(N), rec.description});
      }
    } else {
      auto w = std::make_shared<protocol::trace_writer>(
          rec.path, protocol::trace_options{rec.payloads, -1, static_cast<std::int32_t>(N), rec.description});
      for (auto& x : writers) x = w;
    }
  }
  protocol::inproc_network net(N + 1);
  std::mutex failure_mutex;
  std::exception_ptr worker_failure;
  std::vector<std::thread> threads;
  for (int i = 1; i <= N; ++i) {
    const auto& trace = writers[static_cast<std::size_t>(i)];
    threads.emplace_back([&, i, trace, ep = protocol::record_if(trace, net.endpoint(i))]() mutable {
      try {
        worker::layer_machine machine(i);
        if (trace) machine.set_span_observer(trace->span_observer(i, [&machine] { return machine.iteration(); }));
        worker::run_machine(*ep, machine);
        if (rec.per_node_streams && trace) trace->close();
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!worker_failure) worker_failure = std::current_exception();
      }
    });
  }
  auto coord = protocol::record_if(writers[0], net.endpoint(protocol::coordinator_id));
  coordinator::parallel_options popt;
  popt.health_check = [&] {
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (worker_failure) std::rethrow_exception(worker_failure);
  };
  coordinator::run_result r;
  auto finish = [&] {
    coord.reset();
    for (auto& w : writers)
      if (w) w->close();  // reports a failed write
    writers.clear();
    if (!parts.empty()) protocol::merge_trace_files(rec.path, parts, true);
  };
  try {
    r = coordinator::train_parallel(p, s, *coord, popt, nullptr);
  } catch (...) {
    net.close();
    for (auto& t : threads) t.join();
    try {
      finish();  // a failed run still leaves its trace
    } catch (...) {
    }
    throw;
  }
  for (auto& t : threads) t.join();
  finish();
  return r;
}

std::vector<std::string> parse_demo_flags(const std::vector<std::string>& args, demo_options& o) {
  std::vector<std::string> rest;
  auto as_long = [](const std::string& flag, const std::string& v) {
    std::size_t used = 0;
    long x = 0;
    try {
      x = std::stol(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != v.size() || v.empty()) throw std::invalid_argument(flag + " needs an integer, got '" + v + "'");
    return x;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& f = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw std::invalid_argument(f + " needs a value");
      return args[++i];
    };
    if (f == "--layers") o.layers = static_cast<int>(as_long(f, value()));
    else if (f == "--features") o.features = static_cast<int>(as_long(f, value()));
    else if (f == "--width") o.width = static_cast<int>(as_long(f, value()));
    else if (f == "--outputs") o.outputs = static_cast<int>(as_long(f, value()));
    else if (f == "--samples") o.samples = static_cast<int>(as_long(f, value()));
    else if (f == "--test-samples") o.test_samples = static_cast<int>(as_long(f, value()));
    else if (f == "--algorithm") o.algorithm = value();
    else if (f == "--variant") o.variant = value();
    else if (f == "--activation") o.activation = value();
    else if (f == "--iterations") o.iterations = as_long(f, value());
    else if (f == "--batch-size") o.batch_size = as_long(f, value());
    else if (f == "--updates-per-batch") o.updates_per_batch = as_long(f, value());
    else if (f == "--sync-every") o.sync_every = as_long(f, value());
    else if (f == "--metrics-every") o.metrics_every = as_long(f, value());
    else if (f == "--seed") o.seed = static_cast<std::uint64_t>(as_long(f, value()));
    else rest.push_back(f);
  }
  if (o.layers < 2 || o.samples < 1 || o.iterations < 1 || o.features < 1 || o.outputs < 1 || o.test_samples < 0)
    throw std::invalid_argument("need --layers >= 2, --samples >= 1, --iterations >= 1");
  return rest;
}

std::string demo_flags_help() {
  return "  run flags: --layers N (5) --features d0 (8) --width d (d0) --outputs q (2) --samples n (512)\n"
         "             --test-samples m (0) --algorithm 2s|3s --variant linearized|proximal\n"
         "             --activation relu|leaky_relu|sigmoid|tanh|sin --iterations K (30) --batch-size b (0: full)\n"
         "             --updates-per-batch u (1) --sync-every s (10) --metrics-every m (1) --seed s (1)\n";
}

}  // namespace radmm::tools
