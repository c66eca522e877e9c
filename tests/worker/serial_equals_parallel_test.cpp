// The parallel regional update follows the serial Gauss-Seidel dependencies,
// so with the same seed and config a parallel run must give the serial run's
// weights and metrics exactly (==, not approximately).
#include "coordinator/inproc_run.hpp"
#include "core/rng.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

using namespace radmm;
using coordinator::problem;
using coordinator::schedule;

namespace {

problem make_problem(int N, core::activation act, core::algorithm algo, core::variant var,
                     std::uint64_t seed) {
  problem p;
  p.arch = core::architecture{N, 4, 6, 2, act};
  p.hp = core::preset("default", algo, act, N, p.arch.width);
  p.hp.var = var;
  p.hp.tau = 100;  // large enough proximal weights that every case stays finite
  p.hp.nu = 100;
  p.hp.ef_tau = 1.01;
  p.hp.ef_nu = 1.02;
  p.hp.inner_max_iter = 20;
  core::rng gen(seed);
  auto fill = [&](core::mat& m, Eigen::Index r, Eigen::Index c) {
    m.resize(r, c);
    for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] = gen.uniform(-1, 1);
  };
  fill(p.X_train, 4, 23);
  fill(p.Y_train, 2, 23);
  fill(p.X_test, 4, 7);
  fill(p.Y_test, 2, 7);
  p.W0 = core::kaiming_normal(p.arch, seed + 1);
  return p;
}

bool same_bits(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

void expect_identical(const coordinator::run_result& a, const coordinator::run_result& b) {
  REQUIRE(a.W.size() == b.W.size());
  for (std::size_t i = 1; i < a.W.size(); ++i) {
    INFO("W_" << i);
    CHECK(a.W[i] == b.W[i]);
  }
  REQUIRE(a.metrics.size() == b.metrics.size());
  for (std::size_t r = 0; r < a.metrics.size(); ++r) {
    const auto &x = a.metrics[r], &y = b.metrics[r];
    INFO("metrics row " << r << " (iteration " << x.iteration << ")");
    CHECK(x.iteration == y.iteration);
    CHECK(same_bits(x.J, y.J));
    CHECK(same_bits(x.J_admm, y.J_admm));
    CHECK(same_bits(x.L, y.L));
    CHECK(same_bits(x.res_N, y.res_N));
    CHECK(same_bits(x.res_U, y.res_U));
    CHECK(same_bits(x.res_pen, y.res_pen));
    CHECK(same_bits(x.mse_train, y.mse_train));
    CHECK(same_bits(x.mse_test, y.mse_test));
    CHECK(same_bits(x.tau1, y.tau1));
  }
}

}  // namespace

TEST_CASE("in-process parallel runs reproduce the serial weights and metrics bit for bit") {
  for (core::algorithm algo : {core::algorithm::two_split, core::algorithm::three_split})
    for (core::variant var : {core::variant::linearized, core::variant::proximal})
      for (int N : {2, 3, 5, 10})
        for (core::activation act : {core::activation::relu, core::activation::sigmoid})
          for (long batch : {0L, 8L}) {
            const std::uint64_t seed = 11 + static_cast<std::uint64_t>(N);
            CAPTURE(core::to_string(algo));
            CAPTURE(core::to_string(var));
            CAPTURE(N);
            CAPTURE(core::to_string(act));
            CAPTURE(batch);
            CAPTURE(seed);
            const problem p = make_problem(N, act, algo, var, seed);
            schedule s;
            s.iterations = 7;
            s.batch_size = batch;
            s.updates_per_batch = 2;
            s.metrics_every = 2;
            s.sync_every = 3;
            s.seed = seed;
            const auto serial = coordinator::train_serial(p, s, nullptr);
            const auto parallel = coordinator::train_inproc(p, s, nullptr);
            CHECK(serial.metrics.size() >= 2);
            CHECK(std::isfinite(serial.metrics.back().L));
            expect_identical(serial, parallel);
          }
}

TEST_CASE("random message delays do not change the parallel result") {
  const problem p = make_problem(5, core::activation::tanh, core::algorithm::three_split,
                                 core::variant::linearized, 3);
  schedule s;
  s.iterations = 12;
  s.sync_every = 5;
  const auto serial = coordinator::train_serial(p, s, nullptr);
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    CAPTURE(seed);
    coordinator::inproc_options opt;
    opt.delay_probability = 0.3;
    opt.max_delay = std::chrono::microseconds(2000);
    opt.delay_seed = seed;
    const auto delayed = coordinator::train_inproc(p, s, nullptr, opt);
    expect_identical(serial, delayed);
  }
  const problem p2 = make_problem(4, core::activation::relu, core::algorithm::two_split,
                                  core::variant::linearized, 4);
  schedule s2;
  s2.iterations = 9;
  s2.batch_size = 6;
  const auto serial2 = coordinator::train_serial(p2, s2, nullptr);
  coordinator::inproc_options opt;
  opt.delay_probability = 0.5;
  opt.max_delay = std::chrono::microseconds(1500);
  opt.delay_seed = 9;
  expect_identical(serial2, coordinator::train_inproc(p2, s2, nullptr, opt));
}
