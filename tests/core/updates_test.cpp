// Every block update of Tables I and II checked against an independent
// computation written out here: central finite differences of the subproblem
// objective (or of the augmented Lagrangians (7) and (17)), brute-force scalar
// minimisation, and direct d x d linear algebra. The activations, the lift h_1
// and the Lagrangians are re-implemented in this file so that a mistake shared
// by the library's helpers cannot cancel out.
//
// Sizes: d0 = 3 inputs, width d = 5 (so h_1 pads), q = 2 outputs, N = 4 layers,
// n = 7 samples (n > d) and n = 3 (n < d). Seeds are fixed and printed.
#include "core/linalg.hpp"
#include "core/rng.hpp"
#include "core/updates.hpp"

#include <Eigen/LU>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

using namespace radmm::core;

namespace {

constexpr Eigen::Index kD0 = 3, kD = 5, kQ = 2;
constexpr int kLayers = 4;  // N

const activation kAll[] = {activation::sigmoid, activation::tanh, activation::sin,
                           activation::leaky_relu, activation::relu};
const activation kSmooth[] = {activation::sigmoid, activation::tanh, activation::sin};

// ---- independent model pieces ------------------------------------------------

double sig(activation a, double x) {
  switch (a) {
    case activation::relu: return x > 0 ? x : 0.0;
    case activation::leaky_relu: return x > 0 ? x : 0.01 * x;
    case activation::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case activation::tanh: return std::tanh(x);
    case activation::sin: return std::sin(x);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// sigma', written out independently (used only away from the relu kinks).
double sig_prime(activation a, double x) {
  switch (a) {
    case activation::relu: return x > 0 ? 1.0 : 0.0;
    case activation::leaky_relu: return x > 0 ? 1.0 : 0.01;
    case activation::sigmoid: {
      const double e = 1.0 / (1.0 + std::exp(-x));
      return e * (1.0 - e);
    }
    case activation::tanh: return 1.0 - std::tanh(x) * std::tanh(x);
    case activation::sin: return std::cos(x);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

bool piecewise_linear(activation a) { return a == activation::relu || a == activation::leaky_relu; }

mat sig(activation a, const mat& Z) { return Z.unaryExpr([a](double x) { return sig(a, x); }); }

// h_i: zero-pad to `rows` rows (identity when the sizes agree).
mat pad(const mat& V, Eigen::Index rows) {
  mat out = mat::Zero(rows, V.cols());
  out.topRows(V.rows()) = V;
  return out;
}

mat randn(rng& g, Eigen::Index r, Eigen::Index c, double scale = 1.0) {
  mat m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = scale * g.normal();
  return m;
}

double dot(const mat& a, const mat& b) { return (a.array() * b.array()).sum(); }

double min_abs(const mat& Z) { return Z.cwiseAbs().minCoeff(); }

using objective = std::function<double(const mat&)>;

// Central finite differences, entry by entry. Truncation O(h^2 f'''), rounding
// O(eps |f| / h): with h = 1e-5 and |f| <= 1e3 both stay below ~1e-8.
mat fd_grad(const objective& f, const mat& X, double h = 1e-5) {
  mat G(X.rows(), X.cols());
  mat Xp = X;
  for (Eigen::Index j = 0; j < X.cols(); ++j)
    for (Eigen::Index i = 0; i < X.rows(); ++i) {
      const double x0 = X(i, j);
      Xp(i, j) = x0 + h;
      const double fp = f(Xp);
      Xp(i, j) = x0 - h;
      const double fm = f(Xp);
      Xp(i, j) = x0;
      G(i, j) = (fp - fm) / (2.0 * h);
    }
  return G;
}

// Kink margin for relu / leaky_relu: finite differences of sigma(Z) with steps
// of at most 1e-5 * |V| stay on one linear piece when every |Z| exceeds this.
constexpr double kKinkMargin = 1e-4;

// ---- the augmented Lagrangians (7) and (17), written from the paper --------

struct net {
  std::vector<mat> W, V, U, Lam;  // paper indexing: W[1..N], V[0..N], U[1..N-1], Lam[1..N]
  mat Y;
};

net random_net(std::uint64_t seed, Eigen::Index n) {
  rng g(seed);
  net s;
  s.W.assign(kLayers + 1, mat());
  s.V.assign(kLayers + 1, mat());
  s.U.assign(kLayers + 1, mat());
  s.Lam.assign(kLayers + 1, mat());
  s.V[0] = randn(g, kD0, n);
  for (int i = 1; i <= kLayers; ++i) {
    const Eigen::Index r = i == kLayers ? kQ : kD, c = i == 1 ? kD0 : kD;
    s.W[i] = randn(g, r, c, 0.6);
    s.V[i] = randn(g, r, n);
    s.Lam[i] = randn(g, r, n, 0.5);
    if (i < kLayers) s.U[i] = randn(g, r, n);
  }
  s.Y = randn(g, kQ, n);
  return s;
}

struct weights_hp {
  double mu = 1.3, beta = 2.5, lambda = 0.07;
};

double ridge_and_fit(const net& s, const weights_hp& hp) {
  double w = 0;
  for (int i = 1; i <= kLayers; ++i) w += s.W[i].squaredNorm();
  const mat gapN = s.W[kLayers] * s.V[kLayers - 1] - s.V[kLayers];
  return 0.5 * (s.V[kLayers] - s.Y).squaredNorm() + 0.5 * hp.lambda * w + dot(s.Lam[kLayers], gapN) +
         0.5 * hp.beta * gapN.squaredNorm();
}

// (7): J + mu/2 sum_{i<N} ||h(V_{i-1}) + sigma(W_i V_{i-1}) - V_i||^2
//        + <Lambda_N, W_N V_{N-1} - V_N> + beta/2 ||W_N V_{N-1} - V_N||^2.
double lagrangian_2s(activation a, const net& s, const weights_hp& hp) {
  double pen = 0;
  for (int i = 1; i < kLayers; ++i)
    pen += (pad(s.V[i - 1], kD) + sig(a, mat(s.W[i] * s.V[i - 1])) - s.V[i]).squaredNorm();
  return ridge_and_fit(s, hp) + 0.5 * hp.mu * pen;
}

// (17): J + sum_{i<N} [mu/2 ||h(V_{i-1}) + sigma(U_i) - V_i||^2 + <Lambda_i, W_i V_{i-1} - U_i>
//        + beta/2 ||W_i V_{i-1} - U_i||^2] + the same last-layer terms as (7).
double lagrangian_3s(activation a, const net& s, const weights_hp& hp) {
  double extra = 0;
  for (int i = 1; i < kLayers; ++i) {
    extra += 0.5 * hp.mu * (pad(s.V[i - 1], kD) + sig(a, s.U[i]) - s.V[i]).squaredNorm();
    const mat gap = s.W[i] * s.V[i - 1] - s.U[i];
    extra += dot(s.Lam[i], gap) + 0.5 * hp.beta * gap.squaredNorm();
  }
  return ridge_and_fit(s, hp) + extra;
}

// Sets `block` to `value` and checks that the FD gradient of `L` in that block is
// <= tol relative to the gradient at the block's (random) starting value.
void check_block_stationary(net& s, mat& block, const mat& value,
                            const std::function<double(const net&)>& L, double tol) {
  const objective f = [&](const mat& x) {
    const mat saved = block;
    block = x;
    const double v = L(s);
    block = saved;
    return v;
  };
  REQUIRE(value.rows() == block.rows());
  REQUIRE(value.cols() == block.cols());
  const double g0 = fd_grad(f, block).norm();
  block = value;
  const double g1 = fd_grad(f, block).norm();
  INFO("gradient at the random start " << g0 << ", at the update " << g1);
  CHECK(g0 > 1e-3);
  CHECK(g1 <= tol * g0);
}

// ---- brute-force scalar minimisation for (20) -------------------------------

// Minimises f on [lo, hi]: a grid of `grid` + 1 points, then golden section on
// the two cells around the best grid point. Returns the minimum value.
double brute_min(const std::function<double(double)>& f, double lo, double hi, int grid = 100000) {
  double best_x = lo, best_f = f(lo);
  const double step = (hi - lo) / grid;
  for (int k = 1; k <= grid; ++k) {
    const double x = lo + step * k;
    const double fx = f(x);
    if (fx < best_f) best_f = fx, best_x = x;
  }
  double a = best_x - step, b = best_x + step;
  const double r = 0.5 * (std::sqrt(5.0) - 1.0);
  double c = b - r * (b - a), d = a + r * (b - a);
  double fc = f(c), fd = f(d);
  for (int it = 0; it < 200 && b - a > 1e-15 * (1.0 + std::abs(a)); ++it) {
    if (fc < fd) {
      b = d, d = c, fd = fc;
      c = b - r * (b - a), fc = f(c);
    } else {
      a = c, c = d, fc = fd;
      d = a + r * (b - a), fd = f(d);
    }
  }
  return std::min({best_f, fc, fd, f(0.5 * (a + b))});
}

// The scalar objective of (20): mu/2 (sigma(u) - t)^2 + rho/2 (u - m)^2. As
// f(u) >= rho/2 (u - m)^2, every minimiser has rho/2 (u - m)^2 <= f(m): the
// brute-force bracket is |u - m| <= sqrt(2 f(m) / rho).
double prox_value(activation a, double u, double t, double m, double mu, double rho) {
  const double r = sig(a, u) - t;
  return 0.5 * mu * r * r + 0.5 * rho * (u - m) * (u - m);
}

// Smallest one-sided directional derivative (F(X + h D) - F(X)) / h over the
// +-coordinate directions and 20 random unit directions: >= 0 (up to rounding)
// at a local minimiser of a piecewise-smooth F, kinks included.
double min_directional_derivative(const objective& F, const mat& X, std::uint64_t seed,
                                  double h = 1e-7) {
  const double f0 = F(X);
  double worst = std::numeric_limits<double>::infinity();
  auto probe = [&](const mat& D) { worst = std::min(worst, (F(X + h * D) - f0) / h); };
  mat E = mat::Zero(X.rows(), X.cols());
  for (Eigen::Index k = 0; k < X.size(); ++k) {
    E(k) = 1.0;
    probe(E);
    E(k) = -1.0;
    probe(E);
    E(k) = 0.0;
  }
  rng g(seed);
  for (int k = 0; k < 20; ++k) {
    const mat D = randn(g, X.rows(), X.cols());
    probe(D / D.norm());
  }
  return worst;
}

}  // namespace

// ============================================================================
// 1. Proximal linearised updates minimise their linearised subproblems.
// ============================================================================

TEST_CASE("(10) update_W_hidden_linearized zeroes the FD gradient of its linearised subproblem "
          "(seed 1001, layers 1 and 2, tol 1e-6 relative)") {
  const double mu = 1.3, lambda = 0.07, tau = 0.7;
  for (activation a : kAll) {
    for (int layer : {1, 2}) {
      const Eigen::Index cols = layer == 1 ? kD0 : kD;
      std::uint64_t seed = 1001 + 10 * static_cast<std::uint64_t>(layer);
      mat Wk, Vp, Vc, pre;
      for (int attempt = 0;; ++attempt, ++seed) {
        rng g(seed);
        Wk = randn(g, kD, cols, 0.6);
        Vp = randn(g, cols, 7);
        Vc = randn(g, kD, 7);
        pre = Wk * Vp;
        if (!piecewise_linear(a) || min_abs(pre) > kKinkMargin) break;
        REQUIRE(attempt < 20);
      }
      INFO(to_string(a) << ", layer " << layer << ", seed " << seed);
      // G: FD gradient at W^k of mu/2 ||h(V_prev) + sigma(W V_prev) - V_cur||^2.
      const objective pen = [&](const mat& W) {
        return 0.5 * mu * (pad(Vp, kD) + sig(a, mat(W * Vp)) - Vc).squaredNorm();
      };
      const mat G = fd_grad(pen, Wk);
      const objective phi = [&](const mat& W) {
        return 0.5 * lambda * W.squaredNorm() + dot(G, W - Wk) + 0.5 * tau * (W - Wk).squaredNorm();
      };
      const mat Wn = update_W_hidden_linearized(a, Wk, Vp, Vc, pre, mu, lambda, tau);
      const double g0 = fd_grad(phi, Wk).norm(), g1 = fd_grad(phi, Wn).norm();
      INFO("|grad phi(W^k)| = " << g0 << ", |grad phi(W^{k+1})| = " << g1);
      CHECK(g1 <= 1e-6 * g0);
    }
  }
}

TEST_CASE("(12) update_V_hidden_linearized zeroes the FD gradient of its linearised subproblem "
          "(seed 1201, tol 1e-6 relative)") {
  const double mu = 1.3, nu = 0.8;
  for (activation a : kAll) {
    std::uint64_t seed = 1201;
    mat Vk, A, Wn, Vn;
    for (int attempt = 0;; ++attempt, ++seed) {
      rng g(seed);
      Vk = randn(g, kD, 7);
      A = randn(g, kD, 7);
      Wn = randn(g, kD, kD, 0.6);
      Vn = randn(g, kD, 7);
      if (!piecewise_linear(a) || min_abs(Wn * Vk) > kKinkMargin) break;
      REQUIRE(attempt < 20);
    }
    INFO(to_string(a) << ", seed " << seed);
    // g: FD gradient at V^k of mu/2 ||V + sigma(W_next V) - V_next||^2.
    const objective next_pen = [&](const mat& V) {
      return 0.5 * mu * (V + sig(a, mat(Wn * V)) - Vn).squaredNorm();
    };
    const mat gk = fd_grad(next_pen, Vk);
    const objective phi = [&](const mat& V) {
      return 0.5 * mu * (A - V).squaredNorm() + dot(gk, V - Vk) + 0.5 * nu * (V - Vk).squaredNorm();
    };
    const mat V1 = update_V_hidden_linearized(a, Vk, A, Wn, Vn, mu, nu);
    const double g0 = fd_grad(phi, Vk).norm(), g1 = fd_grad(phi, V1).norm();
    INFO("|grad phi(V^k)| = " << g0 << ", |grad phi(V^{k+1})| = " << g1);
    CHECK(g1 <= 1e-6 * g0);
  }
}

TEST_CASE("(21) update_U_linearized zeroes the FD gradient of its linearised subproblem "
          "(seed 2101, layers 1 and 2, tol 1e-6 relative)") {
  const double mu = 1.3, beta = 3.0, tau = 0.9;
  for (activation a : kAll) {
    for (int layer : {1, 2}) {
      const Eigen::Index prev_rows = layer == 1 ? kD0 : kD;
      std::uint64_t seed = 2101 + 10 * static_cast<std::uint64_t>(layer);
      mat Uk, Vp, Vc, WV, Lam;
      for (int attempt = 0;; ++attempt, ++seed) {
        rng g(seed);
        Uk = randn(g, kD, 7);
        Vp = randn(g, prev_rows, 7);
        Vc = randn(g, kD, 7);
        WV = randn(g, kD, 7);
        Lam = randn(g, kD, 7, 0.5);
        if (!piecewise_linear(a) || min_abs(Uk) > kKinkMargin) break;
        REQUIRE(attempt < 20);
      }
      INFO(to_string(a) << ", layer " << layer << ", seed " << seed);
      const objective pen = [&](const mat& U) {
        return 0.5 * mu * (pad(Vp, kD) + sig(a, U) - Vc).squaredNorm();
      };
      const mat gk = fd_grad(pen, Uk);
      const objective phi = [&](const mat& U) {
        return dot(gk, U - Uk) + dot(Lam, WV - U) + 0.5 * beta * (WV - U).squaredNorm() +
               0.5 * tau * (U - Uk).squaredNorm();
      };
      const mat U1 = update_U_linearized(a, Uk, Vp, Vc, WV, Lam, mu, beta, tau);
      const double g0 = fd_grad(phi, Uk).norm(), g1 = fd_grad(phi, U1).norm();
      INFO("|grad phi(U^k)| = " << g0 << ", |grad phi(U^{k+1})| = " << g1);
      CHECK(g1 <= 1e-6 * g0);
      // An empty Lambda means zero.
      const mat U0 = update_U_linearized(a, Uk, Vp, Vc, WV, mat(), mu, beta, tau);
      const mat U0z = update_U_linearized(a, Uk, Vp, Vc, WV, mat::Zero(kD, 7), mu, beta, tau);
      CHECK((U0 - U0z).norm() <= 1e-14 * U0z.norm());
    }
  }
}

// ============================================================================
// 2. Closed-form updates zero the gradient of the augmented Lagrangian.
// ============================================================================

TEST_CASE("(8)/(13)/(14) two-splitting closed-form updates zero the FD gradient of L^{2s} (7) in "
          "their block (seed 700, n = 7 and n = 3, tol 1e-6 relative)") {
  const weights_hp hp;
  const int N = kLayers;
  for (activation a : kAll) {
    for (Eigen::Index n : {Eigen::Index{7}, Eigen::Index{3}}) {
      INFO(to_string(a) << ", n = " << n << ", seed 700");
      const auto L = [&](const net& s) { return lagrangian_2s(a, s, hp); };
      {
        net s = random_net(700, n);
        INFO("(8) W_N");
        const mat W = update_W_ridge(s.V[N], s.Lam[N], s.V[N - 1], hp.beta, hp.lambda);
        check_block_stationary(s, s.W[N], W, L, 1e-6);
      }
      {
        net s = random_net(700, n);
        INFO("(8) W_N with Lambda_N = 0 passed as an empty matrix");
        s.Lam[N].setZero();
        const mat W = update_W_ridge(s.V[N], mat(), s.V[N - 1], hp.beta, hp.lambda);
        check_block_stationary(s, s.W[N], W, L, 1e-6);
      }
      {
        net s = random_net(700, n);
        INFO("(13) V_{N-1}");
        const mat A = block_target(a, s.V[N - 2], s.W[N - 1] * s.V[N - 2]);
        const mat V = update_V_penultimate(A, s.W[N], s.V[N], s.Lam[N], hp.mu, hp.beta);
        check_block_stationary(s, s.V[N - 1], V, L, 1e-6);
      }
      {
        net s = random_net(700, n);
        INFO("(14) V_N");
        const mat V = update_V_last(s.Y, s.W[N] * s.V[N - 1], s.Lam[N], hp.beta);
        check_block_stationary(s, s.V[N], V, L, 1e-6);
      }
    }
  }
}

TEST_CASE("(18)/(19)/(22)/(23)/(24) three-splitting closed-form updates zero the FD gradient of "
          "L^{3s} (17) in their block (seed 1700, n = 7 and n = 3, tol 1e-6 relative)") {
  const weights_hp hp;
  const int N = kLayers;
  for (activation a : kAll) {
    for (Eigen::Index n : {Eigen::Index{7}, Eigen::Index{3}}) {
      INFO(to_string(a) << ", n = " << n << ", seed 1700");
      const auto L = [&](const net& s) { return lagrangian_3s(a, s, hp); };
      {
        net s = random_net(1700, n);
        INFO("(18) W_N");
        const mat W = update_W_ridge(s.V[N], s.Lam[N], s.V[N - 1], hp.beta, hp.lambda);
        check_block_stationary(s, s.W[N], W, L, 1e-6);
      }
      for (int i = 1; i < N; ++i) {
        net s = random_net(1700, n);
        INFO("(19) W_" << i << (i == 1 ? " (V_0 = X has d0 < d rows)" : ""));
        const mat W = update_W_ridge(s.U[i], s.Lam[i], s.V[i - 1], hp.beta, hp.lambda);
        check_block_stationary(s, s.W[i], W, L, 1e-6);
      }
      for (int i = 1; i <= N - 2; ++i) {
        net s = random_net(1700, n);
        INFO("(22) V_" << i << (i == 1 ? " (h_1 pads V_0)" : ""));
        const mat V = update_V_hidden_3s(a, s.V[i - 1], s.U[i], s.V[i + 1], s.U[i + 1], s.W[i + 1],
                                         s.Lam[i + 1], hp.mu, hp.beta);
        check_block_stationary(s, s.V[i], V, L, 1e-6);
      }
      {
        net s = random_net(1700, n);
        INFO("(23) V_{N-1}");
        const mat A = block_target_3s(a, s.V[N - 2], s.U[N - 1]);
        const mat V = update_V_penultimate(A, s.W[N], s.V[N], s.Lam[N], hp.mu, hp.beta);
        check_block_stationary(s, s.V[N - 1], V, L, 1e-6);
      }
      {
        net s = random_net(1700, n);
        INFO("(24) V_N");
        const mat V = update_V_last(s.Y, s.W[N] * s.V[N - 1], s.Lam[N], hp.beta);
        check_block_stationary(s, s.V[N], V, L, 1e-6);
      }
    }
  }
}

TEST_CASE("block_target and block_target_3s equal h(V_prev) + sigma(.) with h_1 zero-padding "
          "(seed 31, tol 1e-15 relative)") {
  rng g(31);
  const mat X = randn(g, kD0, 7), V = randn(g, kD, 7), Z = randn(g, kD, 7);
  for (activation a : kAll) {
    INFO(to_string(a));
    for (const mat* prev : {&X, &V}) {
      const mat want = pad(*prev, kD) + sig(a, Z);
      CHECK((block_target(a, *prev, Z) - want).norm() <= 1e-15 * want.norm());
      CHECK((block_target_3s(a, *prev, Z) - want).norm() <= 1e-15 * want.norm());
    }
  }
}

// ============================================================================
// 3. Proximal (non-linearised) variants.
// ============================================================================

namespace {

// Draws (t, m, mu, rho) with rho = 10^U(lg_lo, lg_hi) and checks prox_scalar's value
// against the brute-force minimum over the bracket |u - m| <= sqrt(2 f(m) / rho).
void check_prox_scalar(std::uint64_t seed, double lg_lo, double lg_hi, int draws) {
  for (activation a : kAll) {
    rng g(seed + static_cast<std::uint64_t>(a));
    for (int k = 0; k < draws; ++k) {
      const double t = 2.0 * g.normal() + (a == activation::sigmoid ? 0.5 : 0.0);
      const double m = 3.0 * g.normal();
      const double mu = std::pow(10.0, g.uniform(-1.0, 1.0));
      const double rho = std::pow(10.0, g.uniform(lg_lo, lg_hi));
      const auto f = [&](double u) { return prox_value(a, u, t, m, mu, rho); };
      const double R = std::sqrt(2.0 * f(m) / rho) * (1.0 + 1e-9) + 1e-12;
      const double best = brute_min(f, m - R, m + R);
      const double u = prox_scalar(a, t, m, mu, rho);
      const double gap = f(u) - best;
      INFO(to_string(a) << " draw " << k << " (seed " << seed + static_cast<std::uint64_t>(a)
                        << "): t = " << t << ", m = " << m << ", mu = " << mu << ", rho = " << rho
                        << ", u = " << u << ", f(u) = " << f(u) << ", brute-force min " << best);
      CHECK(std::abs(gap) <= 1e-9 * (1.0 + std::abs(best)));
      // Stationarity, sharper than the value: f'(u) = mu (sigma(u) - t) sigma'(u) + rho (u - m)
      // vanishes (except at the relu kink u = 0), relative to the size of its two terms.
      if (!(piecewise_linear(a) && std::abs(u) < 1e-12)) {
        const double s1 = mu * (sig(a, u) - t) * sig_prime(a, u), s2 = rho * (u - m);
        CHECK(std::abs(s1 + s2) <= 1e-9 * (1.0 + std::abs(s1) + std::abs(s2)));
      }
    }
  }
}

}  // namespace

TEST_CASE("(20) prox_scalar reaches the brute-force minimum value within 1e-9 and is stationary "
          "(1e-9 relative) for rho in [1, 10] (seed 2020 + activation, 60 draws per activation)") {
  check_prox_scalar(2020, 0.0, 1.0, 60);
}

TEST_CASE("(20) prox_scalar reaches the brute-force minimum value within 1e-9 and is stationary "
          "(1e-9 relative) in the non-convex regime rho in [1e-3, 1] (seed 2040 + activation, 80 "
          "draws per activation)") {
  check_prox_scalar(2040, -3.0, 0.0, 80);
}

TEST_CASE("(20) update_U_proximal solves every entry's problem mu/2 (a + sigma(u) - v)^2 + beta/2 "
          "(u - c)^2 + omega/2 (u - u^k)^2 to the brute-force minimum within 1e-9 (seed 2030)") {
  const double mu = 1.7, beta = 2.0, omega = 0.5;
  for (activation a : kAll) {
    rng g(2030);
    const mat Vp = randn(g, kD0, 4), Vc = randn(g, kD, 4), WV = randn(g, kD, 4),
              Lam = randn(g, kD, 4, 0.5), Uk = randn(g, kD, 4);
    const mat U = update_U_proximal(a, Uk, Vp, Vc, WV, Lam, mu, beta, omega);
    const mat A = pad(Vp, kD);
    for (Eigen::Index j = 0; j < U.cols(); ++j)
      for (Eigen::Index i = 0; i < U.rows(); ++i) {
        const double c = WV(i, j) + Lam(i, j) / beta;
        const auto f = [&](double u) {
          const double r = A(i, j) + sig(a, u) - Vc(i, j);
          return 0.5 * mu * r * r + 0.5 * beta * (u - c) * (u - c) + 0.5 * omega * (u - Uk(i, j)) * (u - Uk(i, j));
        };
        // f >= (beta + omega)/2 (u - m)^2 + const; bracket generously around c and u^k.
        const double lo = std::min(c, Uk(i, j)), hi = std::max(c, Uk(i, j));
        const double R = std::sqrt(2.0 * std::max(f(lo), f(hi)) / (beta + omega)) + 1e-9;
        const double best = brute_min(f, lo - R, hi + R, 20000);
        INFO(to_string(a) << " entry (" << i << ", " << j << "): f(U) = " << f(U(i, j))
                          << ", brute-force min " << best);
        CHECK(std::abs(f(U(i, j)) - best) <= 1e-9 * (1.0 + std::abs(best)));
        const double u = U(i, j);
        if (!(piecewise_linear(a) && std::abs(u) < 1e-12)) {
          const double s1 = mu * (A(i, j) + sig(a, u) - Vc(i, j)) * sig_prime(a, u);
          const double s2 = beta * (u - c) + omega * (u - Uk(i, j));
          CHECK(std::abs(s1 + s2) <= 1e-9 * (1.0 + std::abs(s1) + std::abs(s2)));
        }
      }
  }
}

TEST_CASE("(9) update_W_hidden_proximal: objective does not increase and the result is stationary "
          "(FD gradient <= 1e-5 relative; with kappa, projected KKT and ||W|| <= kappa (1 + 1e-12)) "
          "for sigmoid, tanh, sin; leaky_relu: descent only (seed 900, inner_tol 1e-12)") {
  const double mu = 1.3, lambda = 0.07, omega = 0.7;
  const double inner_tol = 1e-12;
  const int inner_max = 20000;
  std::vector<activation> acts(std::begin(kSmooth), std::end(kSmooth));
  acts.push_back(activation::leaky_relu);
  for (activation a : acts) {
    for (int layer : {1, 2}) {
      const Eigen::Index cols = layer == 1 ? kD0 : kD;
      rng g(900 + static_cast<std::uint64_t>(layer));
      const mat Wk = randn(g, kD, cols, 0.6), Vp = randn(g, cols, 7), Vc = randn(g, kD, 7);
      INFO(to_string(a) << ", layer " << layer << ", seed " << 900 + layer);
      const objective F = [&](const mat& W) {
        return 0.5 * lambda * W.squaredNorm() + 0.5 * omega * (W - Wk).squaredNorm() +
               0.5 * mu * (pad(Vp, kD) + sig(a, mat(W * Vp)) - Vc).squaredNorm();
      };
      const double g_start = fd_grad(F, Wk).norm();
      const double inf = std::numeric_limits<double>::infinity();
      const mat W = update_W_hidden_proximal(a, Wk, Vp, Vc, mu, lambda, omega, inf, inner_tol, inner_max);
      CHECK(F(W) <= F(Wk));
      if (piecewise_linear(a) && min_abs(W * Vp) <= kKinkMargin) {
        // The result sits at a kink, where gradient descent stalls: it is not a
        // minimiser (a descent direction remains), so only the descent is checked.
        MESSAGE(to_string(a) << ", layer " << layer << ": (9) stops at a kink; smallest one-sided "
                "directional derivative " << min_directional_derivative(F, W, 77)
                << " (|grad F(W^k)| = " << g_start << ")");
      } else {
        const double g_end = fd_grad(F, W).norm();
        INFO("unconstrained: |grad F(W^k)| = " << g_start << ", |grad F(W)| = " << g_end);
        CHECK(g_end <= 1e-5 * g_start);
      }
      // Ball constraint active: kappa below the norm of both W^k and the
      // unconstrained minimiser, so the start is projected and the solution lies
      // on the sphere.
      const double kappa = 0.5 * std::min(Wk.norm(), W.norm());
      const mat Wc = update_W_hidden_proximal(a, Wk, Vp, Vc, mu, lambda, omega, kappa, inner_tol, inner_max);
      const mat W_start = Wk * (kappa / Wk.norm());
      CHECK(Wc.norm() <= kappa * (1.0 + 1e-12));
      CHECK(F(Wc) <= F(W_start));
      if (piecewise_linear(a) && min_abs(Wc * Vp) <= kKinkMargin) continue;
      const mat gc = fd_grad(F, Wc);
      if (Wc.norm() >= kappa * (1.0 - 1e-9)) {
        // KKT on the sphere: grad = -c W with c >= 0, i.e. no tangential part and
        // a non-positive radial part.
        const double radial = dot(gc, Wc) / Wc.squaredNorm();
        const mat tangential = gc - radial * Wc;
        INFO("constrained: |grad F| at the start " << g_start << ", tangential part "
                                                   << tangential.norm() << ", radial coefficient "
                                                   << radial);
        CHECK(tangential.norm() <= 1e-5 * g_start);
        CHECK(radial <= 1e-5 * g_start / Wc.norm());
      } else {
        CHECK(gc.norm() <= 1e-5 * g_start);
      }
    }
  }
}

TEST_CASE("(11) update_V_hidden_proximal: objective does not increase and the FD gradient at the "
          "result is <= 1e-5 relative for sigmoid, tanh, sin; leaky_relu: descent only (seed 1100, "
          "inner_tol 1e-12)") {
  const double mu = 1.3, nu = 0.8;
  std::vector<activation> acts(std::begin(kSmooth), std::end(kSmooth));
  acts.push_back(activation::leaky_relu);
  for (activation a : acts) {
    rng g(1100);
    const mat Vk = randn(g, kD, 7), A = randn(g, kD, 7), Wn = randn(g, kD, kD, 0.6),
              Vn = randn(g, kD, 7);
    INFO(to_string(a) << ", seed 1100");
    const objective F = [&](const mat& V) {
      return 0.5 * mu * (V + sig(a, mat(Wn * V)) - Vn).squaredNorm() +
             0.5 * mu * (A - V).squaredNorm() + 0.5 * nu * (V - Vk).squaredNorm();
    };
    const mat V = update_V_hidden_proximal(a, Vk, A, Wn, Vn, mu, nu, 1e-12, 20000);
    CHECK(F(V) <= F(Vk));
    const double g_start = fd_grad(F, Vk).norm();
    if (piecewise_linear(a) && min_abs(Wn * V) <= kKinkMargin) {
      // The result sits at a kink, where gradient descent stalls: it is not a
      // minimiser (a descent direction remains), so only the descent is checked.
      MESSAGE(to_string(a) << ": (11) stops at a kink; smallest one-sided directional derivative "
              << min_directional_derivative(F, V, 78) << " (|grad F(V^k)| = " << g_start << ")");
      continue;
    }
    const double g_end = fd_grad(F, V).norm();
    INFO("|grad F(V^k)| = " << g_start << ", |grad F(V)| = " << g_end);
    CHECK(g_end <= 1e-5 * g_start);
  }
}

// ============================================================================
// 4. Cheap algebra equals the direct d x d forms.
// ============================================================================

TEST_CASE("ridge_right_solve equals the direct d x d form and an independent LU solve to 1e-10 "
          "relative, n < d and n >= d (seed 4001)") {
  rng g(4001);
  const double beta = 2.5;
  for (double lambda : {1e-3, 0.07, 3.0}) {
    for (Eigen::Index n : {Eigen::Index{2}, Eigen::Index{4}, Eigen::Index{5}, Eigen::Index{9}}) {
      for (Eigen::Index r : {kQ, kD}) {
        const mat V = randn(g, kD, n), B = randn(g, r, n);
        const mat cheap = ridge_right_solve(B, V, lambda, beta);
        const mat direct = ridge_right_solve_direct(B, V, lambda, beta);
        const mat G = lambda * mat::Identity(kD, kD) + beta * V * V.transpose();
        const mat mine = G.fullPivLu().solve(mat(V * B.transpose())).transpose();
        INFO("lambda " << lambda << ", n " << n << ", r " << r);
        REQUIRE(cheap.rows() == r);
        REQUIRE(cheap.cols() == kD);
        CHECK((cheap - direct).norm() <= 1e-10 * direct.norm());
        CHECK((cheap - mine).norm() <= 1e-10 * mine.norm());
      }
    }
  }
}

TEST_CASE("gram_shift_solve equals the direct d x d form and an independent LU solve to 1e-10 "
          "relative, q < d and q >= d (seed 4002)") {
  rng g(4002);
  const double beta = 2.5;
  for (double mu : {1e-3, 1.3, 2.6}) {
    for (Eigen::Index q : {Eigen::Index{1}, kQ, kD, Eigen::Index{8}}) {
      for (Eigen::Index n : {Eigen::Index{3}, Eigen::Index{7}}) {
        const mat W = randn(g, q, kD, 0.6), R = randn(g, kD, n);
        const mat cheap = gram_shift_solve(W, mu, beta, R);
        const mat direct = gram_shift_solve_direct(W, mu, beta, R);
        const mat G = mu * mat::Identity(kD, kD) + beta * W.transpose() * W;
        const mat mine = G.fullPivLu().solve(R);
        INFO("mu " << mu << ", q " << q << ", n " << n);
        CHECK((cheap - direct).norm() <= 1e-10 * direct.norm());
        CHECK((cheap - mine).norm() <= 1e-10 * mine.norm());
      }
    }
  }
}
