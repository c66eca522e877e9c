#include "core/updates.hpp"

#include "core/linalg.hpp"
#include "core/model.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

namespace radmm::core {
namespace {

// sigma'(Z) (.) R, entry by entry, without materialising sigma'(Z).
mat times_derivative(activation act, const_mat_ref R, const_mat_ref Z) {
  mat out = derivative(act, Z);
  out.array() *= R.array();
  return out;
}

// Projected gradient descent with backtracking for the proximal subproblems (9)
// and (11). `value_grad(x, grad)` returns f(x) and writes grad f(x). The step
// is accepted under the sufficient-decrease condition
//   f(x+) <= f(x) + <g, x+ - x> + ||x+ - x||^2 / (2 t),
// so f never increases; it stops when ||x+ - x|| <= tol * max(1, ||x||).
mat projected_gradient(mat x, const std::function<double(const mat&, mat&)>& value_grad,
                       double radius, double t0, double tol, int max_iter) {
  auto project = [radius](mat& y) {
    if (!std::isfinite(radius)) return;
    const double norm = y.norm();
    if (norm > radius) y *= radius / norm;
  };
  project(x);
  mat g(x.rows(), x.cols()), g_new(x.rows(), x.cols());
  double f = value_grad(x, g);
  double t = t0;
  for (int it = 0; it < max_iter; ++it) {
    mat x_new;
    double f_new = 0.0;
    for (int back = 0; back < 60; ++back) {
      x_new = x - t * g;
      project(x_new);
      f_new = value_grad(x_new, g_new);
      const mat step = x_new - x;
      if (f_new <= f + (g.array() * step.array()).sum() + step.squaredNorm() / (2.0 * t)) break;
      t *= 0.5;
    }
    const double moved = (x_new - x).norm();
    if (!(f_new <= f)) break;  // no decrease possible within the backtracking budget
    x.swap(x_new);
    g.swap(g_new);
    f = f_new;
    if (moved <= tol * std::max(1.0, x.norm())) break;
    t *= 2.0;  // let the step grow back after a successful move
  }
  return x;
}

}  // namespace

divergence_error::divergence_error(const std::string& block_name, int layer_index, long iter, const std::string& reason)
    : std::runtime_error("diverged: " + block_name + "_" + std::to_string(layer_index) + " " + reason +
                         " after iteration " + std::to_string(iter)),
      block(block_name),
      layer(layer_index),
      iteration(iter) {}

void check_finite(const_mat_ref m, const char* block, int layer, long iteration) {
  if (!m.allFinite()) throw divergence_error(block, layer, iteration);
}

mat mul(const_mat_ref a, const_mat_ref b) { return a * b; }
double sq_norm(const_mat_ref a) { return a.squaredNorm(); }
double sq_dist(const_mat_ref a, const_mat_ref b) { return (a - b).squaredNorm(); }
double frobenius_dot(const_mat_ref a, const_mat_ref b) { return a.cwiseProduct(b).sum(); }

mat update_W_ridge(const_mat_ref Z, const_mat_ref Lambda, const_mat_ref V_prev, double beta,
                   double lambda) {
  mat B = beta * Z;
  if (Lambda.size() != 0) B -= Lambda;
  return ridge_right_solve(B, V_prev, lambda, beta);
}

mat block_target(activation act, const_mat_ref V_prev, const_mat_ref pre) {
  mat A = apply(act, pre);
  add_lifted(A, V_prev);
  return A;
}

mat update_W_hidden_linearized(activation act, const_mat_ref W, const_mat_ref V_prev,
                               const_mat_ref V_cur, const_mat_ref pre, double mu, double lambda,
                               double tau) {
  mat R = block_target(act, V_prev, pre);
  R -= V_cur;
  const mat D = times_derivative(act, R, pre);
  // (tau W - G) / (lambda + tau) with the scale factors folded into one pass
  // and the GEMM: one read of W, no separate division.
  mat W_new = (tau / (lambda + tau)) * W;
  W_new.noalias() -= (mu / (lambda + tau)) * (D * V_prev.transpose());
  return W_new;
}

mat update_W_hidden_proximal(activation act, const_mat_ref W, const_mat_ref V_prev,
                             const_mat_ref V_cur, double mu, double lambda, double omega,
                             double kappa, double inner_tol, int inner_max_iter) {
  const mat W_k = W;
  auto value_grad = [&](const mat& Wx, mat& grad) {
    const mat pre = Wx * V_prev;
    mat R = block_target(act, V_prev, pre);
    R -= V_cur;
    const mat D = times_derivative(act, R, pre);
    grad = lambda * Wx + omega * (Wx - W_k);
    grad.noalias() += mu * (D * V_prev.transpose());
    return 0.5 * lambda * Wx.squaredNorm() + 0.5 * omega * (Wx - W_k).squaredNorm() +
           0.5 * mu * R.squaredNorm();
  };
  const double t0 = 1.0 / (lambda + omega + mu * V_prev.squaredNorm());
  return projected_gradient(W_k, value_grad, kappa, t0, inner_tol, inner_max_iter);
}

mat update_V_hidden_linearized(activation act, const_mat_ref V, const_mat_ref A,
                               const_mat_ref W_next, const_mat_ref V_next, double mu, double nu) {
  const mat P = W_next * V;  // W_{i+1}^{k+1} V_i^k
  mat R = apply(act, P);
  R += V;
  R -= V_next;  // full residual V_i + sigma(W_{i+1} V_i) - V_{i+1}
  const mat D = times_derivative(act, R, P);
  // V = (mu A + nu V^k - g) / (mu + nu),  g = mu (R + W_next^T D)
  mat out = mu * A + nu * V - mu * R;
  out.noalias() -= mu * (W_next.transpose() * D);
  out /= (mu + nu);
  return out;
}

mat update_V_hidden_proximal(activation act, const_mat_ref V, const_mat_ref A,
                             const_mat_ref W_next, const_mat_ref V_next, double mu, double nu,
                             double inner_tol, int inner_max_iter) {
  const mat V_k = V;
  auto value_grad = [&](const mat& Vx, mat& grad) {
    const mat P = W_next * Vx;
    mat R = apply(act, P);
    R += Vx;
    R -= V_next;
    const mat D = times_derivative(act, R, P);
    grad = mu * R + mu * (Vx - A) + nu * (Vx - V_k);
    grad.noalias() += mu * (W_next.transpose() * D);
    return 0.5 * mu * R.squaredNorm() + 0.5 * mu * (A - Vx).squaredNorm() +
           0.5 * nu * (Vx - V_k).squaredNorm();
  };
  const double w2 = W_next.squaredNorm();  // upper bound of ||W||_2^2
  const double t0 = 1.0 / (mu * (2.0 + 2.0 * w2) + nu);
  return projected_gradient(V_k, value_grad, std::numeric_limits<double>::infinity(), t0, inner_tol,
                            inner_max_iter);
}

mat update_V_penultimate(const_mat_ref A, const_mat_ref W_N, const_mat_ref V_N,
                         const_mat_ref Lambda_N, double mu, double beta) {
  mat T = beta * V_N;
  if (Lambda_N.size() != 0) T -= Lambda_N;
  mat rhs = mu * A;
  rhs.noalias() += W_N.transpose() * T;
  return gram_shift_solve(W_N, mu, beta, rhs);
}

mat update_V_last(const_mat_ref Y, const_mat_ref WV, const_mat_ref Lambda, double beta) {
  mat out = Y + beta * WV;
  if (Lambda.size() != 0) out += Lambda;
  out /= (1.0 + beta);
  return out;
}

void update_dual(mat& Lambda, const_mat_ref WV, const_mat_ref Z, double beta) {
  if (Lambda.size() == 0) Lambda = mat::Zero(WV.rows(), WV.cols());
  Lambda += beta * (WV - Z);
}

mat update_U_linearized(activation act, const_mat_ref U, const_mat_ref V_prev,
                        const_mat_ref V_cur, const_mat_ref WV, const_mat_ref Lambda, double mu,
                        double beta, double tau) {
  mat R = block_target_3s(act, V_prev, U);
  R -= V_cur;
  const mat g = times_derivative(act, R, U);
  mat out = tau * U + beta * WV - mu * g;
  if (Lambda.size() != 0) out += Lambda;
  out /= (tau + beta);
  return out;
}

double prox_scalar(activation act, double t, double m, double mu, double rho) {
  // min_u f(u) = mu/2 (sigma(u) - t)^2 + rho/2 (u - m)^2
  auto f = [&](double u) {
    const double r = act_value(act, u) - t;
    return 0.5 * mu * r * r + 0.5 * rho * (u - m) * (u - m);
  };
  if (act == activation::relu || act == activation::leaky_relu) {
    const double slope = act == activation::relu ? 0.0 : leaky_relu_slope;
    // Piece u <= 0, sigma(u) = slope u; piece u >= 0, sigma(u) = u. Each piece is a
    // convex quadratic; its minimiser clamped to the piece is the piece's minimum.
    const double u_neg = std::min(0.0, (mu * slope * t + rho * m) / (mu * slope * slope + rho));
    const double u_pos = std::max(0.0, (mu * t + rho * m) / (mu + rho));
    return f(u_neg) <= f(u_pos) ? u_neg : u_pos;
  }
  const activation_bounds b = bounds_of(act);
  auto df = [&](double u) { return mu * (act_value(act, u) - t) * act_derivative(act, u) + rho * (u - m); };
  auto d2f = [&](double u) {
    const double s1 = act_derivative(act, u);
    return mu * (s1 * s1 + (act_value(act, u) - t) * act_second_derivative(act, u)) + rho;
  };
  // Every stationary point satisfies |u - m| <= mu (psi0 + |t|) psi1 / rho.
  double r = mu * (b.psi0 + std::abs(t)) * b.psi1 / rho;
  // A global minimiser u* also satisfies rho/2 (u* - m)^2 <= f(u_ref) - mu/2 dist(t, range)^2
  // for any u_ref; with u_ref the preimage of t nearest to m this bracket is
  // about a period wide for sin and O(1) otherwise, however small rho is.
  {
    const double lo = act == activation::sigmoid ? 0.0 : -1.0, hi = 1.0;
    const double c = std::clamp(t, lo, hi), gap = t - c;
    double u_ref = m;
    if (act == activation::sigmoid) {
      const double cc = std::clamp(c, 1e-12, 1.0 - 1e-12);
      u_ref = std::log(cc / (1.0 - cc));
    } else if (act == activation::tanh) {
      u_ref = std::atanh(std::clamp(c, -1.0 + 1e-12, 1.0 - 1e-12));
    } else if (act == activation::sin) {
      constexpr double two_pi = 6.283185307179586;
      const double a = std::asin(c);
      double best_u = a, best_d = std::numeric_limits<double>::infinity();
      for (double base : {a, 3.141592653589793 - a}) {
        const double k = std::round((m - base) / two_pi);
        for (double kk : {k - 1, k, k + 1}) {
          const double cand = base + kk * two_pi;
          if (std::abs(cand - m) < best_d) best_d = std::abs(cand - m), best_u = cand;
        }
      }
      u_ref = best_u;
    }
    const double f_ref = std::min(f(m), f(u_ref));
    const double slack = std::max(0.0, f_ref - 0.5 * mu * gap * gap);
    const double r_ref = std::sqrt(2.0 * slack / rho) * (1.0 + 1e-12) + 1e-12 * (1.0 + std::abs(m));
    r = std::min(r, r_ref);
  }
  // Safeguarded Newton on a bracket [lo, hi] with df(lo) <= 0 <= df(hi).
  auto newton = [&](double lo, double hi) {
    double x = std::clamp(m, lo, hi);
    for (int it = 0; it < 100; ++it) {
      const double g = df(x);
      if (g == 0.0) return x;
      if (g < 0) lo = x; else hi = x;
      const double h = d2f(x);
      double xn = (h > 0) ? x - g / h : 0.5 * (lo + hi);
      if (!(xn > lo && xn < hi)) xn = 0.5 * (lo + hi);
      if (std::abs(xn - x) <= 1e-15 * (1.0 + std::abs(x)) || hi - lo <= 1e-15 * (1.0 + std::abs(x)))
        return xn;
      x = xn;
    }
    return x;
  };
  const double curvature_floor = mu * (b.psi1 * b.psi1 + (b.psi0 + std::abs(t)) * b.psi2);
  if (rho > curvature_floor) return newton(m - r, m + r);  // strongly convex: unique root
  // Possibly non-convex: find every sign change of f' on a grid over the bracket,
  // refine each and keep the lowest value. The grid step (at most 0.25) resolves
  // the activations' own curvature scale (sin's local minima lie about pi
  // apart), so a small rho, which widens the bracket, costs more points rather
  // than missing minima.
  const long grid = std::max(256L, static_cast<long>(std::ceil(2.0 * r / 0.25)));
  double best = m, best_f = std::numeric_limits<double>::infinity();
  double a = m - r, fa = df(a);
  for (long k = 1; k <= grid; ++k) {
    const double c = m - r + 2.0 * r * static_cast<double>(k) / static_cast<double>(grid);
    const double fc = df(c);
    if (fa <= 0 && fc >= 0) {
      const double u = newton(a, c);
      const double fu = f(u);
      if (fu < best_f) best_f = fu, best = u;
    }
    a = c;
    fa = fc;
  }
  return best;
}

mat update_U_proximal(activation act, const_mat_ref U, const_mat_ref V_prev, const_mat_ref V_cur,
                      const_mat_ref WV, const_mat_ref Lambda, double mu, double beta,
                      double omega) {
  const double rho = beta + omega;
  mat out(U.rows(), U.cols());
  const Eigen::Index lifted_rows = V_prev.rows();
  for (Eigen::Index j = 0; j < U.cols(); ++j) {
    for (Eigen::Index i = 0; i < U.rows(); ++i) {
      const double a = i < lifted_rows ? V_prev(i, j) : 0.0;
      const double c = WV(i, j) + (Lambda.size() != 0 ? Lambda(i, j) / beta : 0.0);
      const double m = (beta * c + omega * U(i, j)) / rho;
      out(i, j) = prox_scalar(act, V_cur(i, j) - a, m, mu, rho);
    }
  }
  return out;
}

mat block_target_3s(activation act, const_mat_ref V_prev, const_mat_ref U) {
  mat A = apply(act, U);
  add_lifted(A, V_prev);
  return A;
}

mat update_V_hidden_3s(activation act, const_mat_ref V_prev, const_mat_ref U_cur,
                       const_mat_ref V_next, const_mat_ref U_next, const_mat_ref W_next,
                       const_mat_ref Lambda_next, double mu, double beta) {
  mat rhs = block_target_3s(act, V_prev, U_cur);
  rhs += V_next;
  rhs -= apply(act, U_next);
  rhs *= mu;
  mat T = beta * U_next;
  if (Lambda_next.size() != 0) T -= Lambda_next;
  rhs.noalias() += W_next.transpose() * T;
  return gram_shift_solve(W_next, 2.0 * mu, beta, rhs);
}

}  // namespace radmm::core
