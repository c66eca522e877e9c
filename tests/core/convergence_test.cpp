// Behaviour of the serial sweeps (Algorithms 1 and 2) on a small synthetic
// problem: a random residual teacher (core::kaiming_normal + core::predict)
// labels X ~ N(0, 1); a student from another seed is trained by serial_engine.
// Checks: the train MSE falls at least tenfold and the constraint residuals
// res_N (and res_U) go to zero; Proposition 1 (the two-splitting proximal
// RADMM never increases L^{2s} when beta > 1); the metrics' L equals (7)/(17)
// written out independently; two runs from the same seed are bit-identical.
//
// Sizes: d0 = 4, width d = 8 (h_1 pads), q = 2, N = 3 layers, n = 60 samples.
#include "core/metrics.hpp"
#include "core/model.hpp"
#include "core/rng.hpp"
#include "core/serial.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

using namespace radmm::core;

namespace {

architecture small_arch(activation a) {
  architecture arch;
  arch.layers = 3;
  arch.input_dim = 4;
  arch.width = 8;
  arch.output_dim = 2;
  arch.act = a;
  return arch;
}

struct problem {
  mat X, Y;
};

// Teacher: kaiming_normal(arch, teacher_seed); X ~ N(0, 1) from data_seed.
problem teacher_problem(const architecture& arch, std::uint64_t data_seed, std::uint64_t teacher_seed,
                        Eigen::Index n = 60) {
  rng g(data_seed);
  problem p;
  p.X.resize(arch.input_dim, n);
  for (Eigen::Index k = 0; k < p.X.size(); ++k) p.X.data()[k] = g.normal();
  p.Y = predict(arch, kaiming_normal(arch, teacher_seed), p.X);
  return p;
}

double mse(const architecture& arch, const weight_set& W, const problem& p) {
  return (predict(arch, W, p.X) - p.Y).squaredNorm() / static_cast<double>(p.X.cols());
}

hyper_params params(algorithm algo, variant var) {
  hyper_params hp;
  hp.algo = algo;
  hp.var = var;
  hp.mu = 1.0;
  hp.lambda = 1e-3;
  hp.tau = hp.nu = 1.0;
  hp.beta = algo == algorithm::two_split ? 2.0 : 20.0;
  return hp;
}

iteration_metrics metrics_of(const serial_engine& e, std::vector<layer_terms> terms, const problem& p) {
  add_forward_terms(e.arch(), e.weights(), p.X, p.Y, false, terms);
  const hyper_params& hp = e.hyper();
  return assemble_metrics(terms, hp.algo, hp.lambda, hp.mu, hp.beta, p.X.cols(), 0);
}

// (7) or (17) from the state, written out independently of admm_terms / metrics.
double lagrangian(const architecture& arch, const hyper_params& hp, const admm_state& s) {
  const int N = arch.layers;
  auto sig = [&](const mat& Z) {
    return Z.unaryExpr([&](double x) {
      switch (arch.act) {
        case activation::relu: return x > 0 ? x : 0.0;
        case activation::leaky_relu: return x > 0 ? x : 0.01 * x;
        case activation::sigmoid: return 1.0 / (1.0 + std::exp(-x));
        case activation::tanh: return std::tanh(x);
        case activation::sin: return std::sin(x);
      }
      return 0.0;
    }).eval();
  };
  auto h = [&](const mat& V) {
    mat out = mat::Zero(arch.width, V.cols());
    out.topRows(V.rows()) = V;
    return out;
  };
  double L = 0.5 * (s.V[N] - s.Y).squaredNorm();
  for (int i = 1; i <= N; ++i) L += 0.5 * hp.lambda * s.W[i].squaredNorm();
  for (int i = 1; i < N; ++i) {
    const mat inner = hp.algo == algorithm::two_split ? mat(s.W[i] * s.V[i - 1]) : s.U[i];
    L += 0.5 * hp.mu * (h(s.V[i - 1]) + sig(inner) - s.V[i]).squaredNorm();
    if (hp.algo == algorithm::three_split) {
      const mat gap = s.W[i] * s.V[i - 1] - s.U[i];
      L += (s.Lambda[i].array() * gap.array()).sum() + 0.5 * hp.beta * gap.squaredNorm();
    }
  }
  const mat gap = s.W[N] * s.V[N - 1] - s.V[N];
  L += (s.Lambda[N].array() * gap.array()).sum() + 0.5 * hp.beta * gap.squaredNorm();
  return L;
}

struct run_summary {
  double mse0 = 0, mse_end = 0;
  double res_N_max = 0, res_N_end = 0, res_U_max = 0, res_U_end = 0;
  double L_mismatch = 0;  // largest |L(metrics) - L(independent)| / |L|
};

// Runs `iters` iterations from kaiming_normal(arch, 12) on the teacher problem;
// every iteration compares the metrics' L with the independent (7)/(17).
run_summary train(const architecture& arch, const hyper_params& hp, const problem& p, int iters) {
  serial_engine e(arch, hp, kaiming_normal(arch, 12));
  e.set_batch(p.X, p.Y);
  run_summary r;
  r.mse0 = mse(arch, e.weights(), p);
  std::vector<layer_terms> terms;
  for (int k = 0; k < iters; ++k) {
    e.iterate(&terms);
    const iteration_metrics m = metrics_of(e, terms, p);
    r.res_N_max = std::max(r.res_N_max, m.res_N);
    r.res_N_end = m.res_N;
    if (hp.algo == algorithm::three_split) {
      r.res_U_max = std::max(r.res_U_max, m.res_U);
      r.res_U_end = m.res_U;
    }
    r.mse_end = m.mse_train;
    const double L = lagrangian(arch, hp, e.state());
    r.L_mismatch = std::max(r.L_mismatch, std::abs(m.L - L) / std::abs(L));
  }
  CHECK(std::abs(r.mse_end - mse(arch, e.weights(), p)) <= 1e-12 * r.mse_end);
  return r;
}

}  // namespace

TEST_CASE("two-splitting proximal linearized RADMM (Algorithm 1; beta 2, mu 1, lambda 1e-3, "
          "tau = nu = 100) cuts the train MSE tenfold in 300 iterations and drives res_N below 1e-2 "
          "of its peak (teacher seed 11, data seed 5, student seed 12)") {
  // tau = nu = 1 (the "default" preset) is too small a proximal weight for n = 60:
  // the linearised W step is a gradient step of length 1 / (lambda + tau) on a
  // penalty whose gradient is ~ mu ||V_{i-1}||_2^2 ~ 100 Lipschitz. tanh then stalls
  // (MSE 12.7 -> 7.6) and sin, leaky_relu diverge; tau = nu = 100 is stable.
  hyper_params hp = params(algorithm::two_split, variant::linearized);
  hp.tau = hp.nu = 100.0;
  for (activation a : {activation::tanh, activation::sigmoid}) {
    const architecture arch = small_arch(a);
    const problem p = teacher_problem(arch, 5, 11);
    const run_summary r = train(arch, hp, p, 300);
    INFO(to_string(a) << ": MSE " << r.mse0 << " -> " << r.mse_end << ", res_N peak " << r.res_N_max
                      << " -> " << r.res_N_end << ", L mismatch " << r.L_mismatch);
    CHECK(r.mse_end <= 0.1 * r.mse0);
    CHECK(r.res_N_end <= 1e-2 * r.res_N_max);
    CHECK(r.L_mismatch <= 1e-10);
  }
}

TEST_CASE("three-splitting proximal linearized RADMM (Algorithm 2; beta 20, mu 1, lambda 1e-3, "
          "tau 1) cuts the train MSE tenfold in 300 iterations and drives res_N and res_U below "
          "1e-2 of their peaks (teacher seed 11, data seed 5, student seed 12)") {
  const hyper_params hp = params(algorithm::three_split, variant::linearized);
  for (activation a : {activation::tanh, activation::sigmoid}) {
    const architecture arch = small_arch(a);
    const problem p = teacher_problem(arch, 5, 11);
    const run_summary r = train(arch, hp, p, 300);
    INFO(to_string(a) << ": MSE " << r.mse0 << " -> " << r.mse_end << ", res_N peak " << r.res_N_max
                      << " -> " << r.res_N_end << ", res_U peak " << r.res_U_max << " -> "
                      << r.res_U_end << ", L mismatch " << r.L_mismatch);
    CHECK(r.mse_end <= 0.1 * r.mse0);
    CHECK(r.res_N_end <= 1e-2 * r.res_N_max);
    CHECK(r.res_U_max > 0);
    CHECK(r.res_U_end <= 1e-2 * r.res_U_max);
    CHECK(r.L_mismatch <= 1e-10);
  }
}

TEST_CASE("Proposition 1: the two-splitting proximal RADMM (beta 2 > 1, tau = nu = 1; default inner "
          "solver and a 2-step inner solver) never increases L^{2s} from iteration 1 to 100, 1e-10 "
          "relative slack (sigmoid, tanh; teacher seed 11, data seed 5, student seed 12)") {
  // The proof (Appendix IX-D) bounds the multiplier ascent (1/beta)||dLambda||^2 by
  // the V_N descent through Lambda^k = V_N^k - Y, the optimality condition of (14).
  // That identity holds after the first iteration only (Lambda^0 = 0 while
  // V_N^0 = W_N V_{N-1} != Y), so the first step may raise L and is not checked.
  // The inner solver of (9) and (11) only ever decreases its objective, which
  // equals L in that block plus the proximal term, so descent must not depend on
  // its accuracy: a 2-step inner solve is checked too.
  for (int inner : {200, 2}) {
    hyper_params hp = params(algorithm::two_split, variant::proximal);
    hp.inner_max_iter = inner;
    for (activation a : {activation::sigmoid, activation::tanh}) {
      INFO("inner_max_iter " << inner);
      const architecture arch = small_arch(a);
      const problem p = teacher_problem(arch, 5, 11);
      serial_engine e(arch, hp, kaiming_normal(arch, 12));
      e.set_batch(p.X, p.Y);
      const double L0 = lagrangian(arch, hp, e.state());
      std::vector<layer_terms> terms;
      e.iterate(&terms);
      double L_prev = metrics_of(e, terms, p).L;
      MESSAGE(to_string(a) << ", inner_max_iter " << inner << ": first step (not checked) L^0 = "
                           << L0 << " -> L^1 = " << L_prev);
      const int N = arch.layers;
      int increases = 0;
      double worst = -std::numeric_limits<double>::infinity();
      for (int k = 1; k < 100; ++k) {
        const admm_state& s = e.state();
        const mat dual_gap = s.Lambda[N] - (s.V[N] - s.Y);
        CHECK(dual_gap.norm() <= 1e-12 * (1.0 + s.Lambda[N].norm()));
        e.iterate(&terms);
        const double L = metrics_of(e, terms, p).L;
        const double rise = (L - L_prev) / std::abs(L_prev);
        worst = std::max(worst, rise);
        if (rise > 1e-10) ++increases;
        L_prev = L;
      }
      INFO(to_string(a) << ": largest relative change of L per iteration " << worst << ", final L "
                        << L_prev);
      CHECK(increases == 0);
    }
  }
}

TEST_CASE("serial_engine is bit-identical across two runs from the same seed (2s and 3s, linearized "
          "and proximal, 15 iterations, weights and multipliers compared with ==)") {
  for (algorithm algo : {algorithm::two_split, algorithm::three_split}) {
    for (variant var : {variant::linearized, variant::proximal}) {
      hyper_params hp = params(algo, var);
      if (algo == algorithm::two_split && var == variant::linearized) hp.tau = hp.nu = 100.0;
      const architecture arch = small_arch(activation::tanh);
      const problem p = teacher_problem(arch, 5, 11);
      auto run = [&] {
        serial_engine e(arch, hp, kaiming_normal(arch, 12));
        e.set_batch(p.X, p.Y);
        for (int k = 0; k < 15; ++k) e.iterate();
        return e.state();
      };
      const admm_state s1 = run(), s2 = run();
      INFO(to_string(algo) << " " << to_string(var));
      for (int i = 1; i <= arch.layers; ++i) {
        CHECK(s1.W[i] == s2.W[i]);
        CHECK(s1.V[i] == s2.V[i]);
      }
      CHECK(s1.Lambda[arch.layers] == s2.Lambda[arch.layers]);
      CHECK(s1.W[1].allFinite());
    }
  }
}
