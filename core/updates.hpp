#pragma once
// The block updates of Tables I and II, one pure function per equation. Each
// takes exactly the iterates its subproblem reads, so the serial sweep
// (Algorithms 1, 2) and the per-layer machines of the parallel regional update
// (Algorithms 3, 4) call the same code on the same values.
//
// Conventions: V_prev is V_{i-1} as stored (layer 1: the input X, which h_1
// zero-pads to the hidden width); "pre" is a cached product W_i V_{i-1}.
// Every derivation starts from the augmented Lagrangians (7) and (17); where
// the printed formula differs, the comment says which form is used and why.
#include "core/activation.hpp"
#include "core/types.hpp"

#include <stdexcept>
#include <string>

namespace radmm::core {

// A block variable became NaN or Inf: the iteration diverged. Names the block,
// the layer and the iteration that produced it (what() says all three).
struct divergence_error : std::runtime_error {
  divergence_error(const std::string& block, int layer, long iteration,
                   const std::string& reason = "holds NaN or Inf");
  std::string block;
  int layer;
  long iteration;
};
// Throws divergence_error when `m` holds a NaN or an Inf (O(size), once per update).
void check_finite(const_mat_ref m, const char* block, int layer, long iteration);

// Arithmetic shared by the serial sweep and the layer machines. Eigen chooses
// its loop order (and so the rounding of a sum) from the operand types, so a
// heap matrix and a view into shared memory could otherwise round differently.
// Every product and reduction that feeds an update or a metric goes through
// these, with Ref parameters, so serial and parallel runs agree bit for bit.
mat mul(const_mat_ref a, const_mat_ref b);
double sq_norm(const_mat_ref a);
double sq_dist(const_mat_ref a, const_mat_ref b);  // ||a - b||^2
double frobenius_dot(const_mat_ref a, const_mat_ref b);

// (8), (18), (19): argmin_W lambda/2 ||W||^2 + <Lambda, W V_prev - Z> + beta/2 ||W V_prev - Z||^2
//   = (beta Z - Lambda) V_prev^T (lambda I + beta V_prev V_prev^T)^{-1}.
// Z is V_N (8, 18) or U_i (19). An empty Lambda means zero.
mat update_W_ridge(const_mat_ref Z, const_mat_ref Lambda, const_mat_ref V_prev, double beta,
                   double lambda);

// (10), two-splitting, proximal linearized. Minimises
//   lambda/2 ||W||^2 + <G, W - W^k> + tau/2 ||W - W^k||^2,
//   G = mu [(h(V_prev) + sigma(W^k V_prev) - V_cur) (.) sigma'(W^k V_prev)] V_prev^T,
// the gradient of mu/2 ||h(V_prev) + sigma(W V_prev) - V_cur||^2 at W^k. The paper
// leaves the iterate inside sigma unnamed; the linearisation point is W^k.
// pre = W^k V_prev (cached from the previous V update or the forward pass).
mat update_W_hidden_linearized(activation act, const_mat_ref W, const_mat_ref V_prev,
                               const_mat_ref V_cur, const_mat_ref pre, double mu, double lambda,
                               double tau);

// (9), two-splitting, proximal: argmin_{||W|| <= kappa} lambda/2 ||W||^2 +
//   omega/2 ||W - W^k||^2 + mu/2 ||h(V_prev) + sigma(W V_prev) - V_cur||^2,
// by projected gradient descent with backtracking from W^k (inner_tol on the
// relative step, inner_max_iter steps). The objective never increases. For
// relu and leaky_relu the objective has kinks; the solver uses the one-sided
// derivative sigma'(0) = 0 (relu) or the slope (leaky_relu), and can stop at a
// kink short of the exact argmin. Descent, which Proposition 1 needs, holds.
mat update_W_hidden_proximal(activation act, const_mat_ref W, const_mat_ref V_prev,
                             const_mat_ref V_cur, double mu, double lambda, double omega,
                             double kappa, double inner_tol, int inner_max_iter);

// A_i = h(V_prev) + sigma(pre), pre = W_i V_prev: the target of V_i in the
// penalty mu/2 ||A_i - V_i||^2.
mat block_target(activation act, const_mat_ref V_prev, const_mat_ref pre);

// (12), two-splitting, proximal linearized, 1 <= i <= N-2. Minimises
//   mu/2 ||A - V||^2 + <g, V - V^k> + nu/2 ||V - V^k||^2,
//   g = mu [R + W_next^T (R (.) sigma'(W_next V^k))],  R = V^k + sigma(W_next V^k) - V_next,
// g being the gradient of mu/2 ||V + sigma(W_next V) - V_next||^2 at V^k. The
// printed (12) drops sigma from R in its last term and writes V_{i+1}^{k+1} in its
// first bracket; the derivation has the full residual R and V_{i+1}^k (only that
// iterate exists when V_i is updated in the Gauss-Seidel sweep of Algorithm 1).
// A = A_i at (W_i^{k+1}, V_{i-1}^{k+1}); W_next = W_{i+1}^{k+1}; V_next = V_{i+1}^k.
mat update_V_hidden_linearized(activation act, const_mat_ref V, const_mat_ref A,
                               const_mat_ref W_next, const_mat_ref V_next, double mu, double nu);

// (11), two-splitting, proximal: argmin_V mu/2 ||V + sigma(W_next V) - V_next||^2 +
//   mu/2 ||A - V||^2 + nu/2 ||V - V^k||^2, gradient descent with backtracking from V^k
// (same stopping rule and the same caveat at relu/leaky_relu kinks as (9)).
mat update_V_hidden_proximal(activation act, const_mat_ref V, const_mat_ref A,
                             const_mat_ref W_next, const_mat_ref V_next, double mu, double nu,
                             double inner_tol, int inner_max_iter);

// (13), (23): argmin_V mu/2 ||A - V||^2 + <Lambda_N, W_N V - V_N> + beta/2 ||W_N V - V_N||^2,
//   (mu I + beta W_N^T W_N) V = mu A + W_N^T (beta V_N - Lambda_N).
// A = h(V_{N-2}) + sigma(W_{N-1} V_{N-2}) (2s) or h(V_{N-2}) + sigma(U_{N-1}) (3s).
mat update_V_penultimate(const_mat_ref A, const_mat_ref W_N, const_mat_ref V_N,
                         const_mat_ref Lambda_N, double mu, double beta);

// (14), (24): argmin 1/2||V_N - Y||^2 + <Lambda, WV - V_N> + beta/2 ||WV - V_N||^2
//   = (Y + beta WV + Lambda) / (1 + beta),  WV = W_N^{k+1} V_{N-1}^{k+1}.
mat update_V_last(const_mat_ref Y, const_mat_ref WV, const_mat_ref Lambda, double beta);

// (15), (25), (26): Lambda += beta (WV - Z).
void update_dual(mat& Lambda, const_mat_ref WV, const_mat_ref Z, double beta);

// (21), three-splitting, proximal linearized. Minimises
//   <g, U - U^k> + <Lambda_i, WV - U> + beta/2 ||WV - U||^2 + tau/2 ||U - U^k||^2,
//   g = mu (h(V_prev) + sigma(U^k) - V_cur) (.) sigma'(U^k),
// i.e. U = (tau U^k + Lambda_i + beta WV - g) / (tau + beta). Table II labels this
// row V_i; it is the U_i update. V_prev = V_{i-1}^{k+1}, V_cur = V_i^k, WV = W_i^{k+1} V_prev.
mat update_U_linearized(activation act, const_mat_ref U, const_mat_ref V_prev,
                        const_mat_ref V_cur, const_mat_ref WV, const_mat_ref Lambda, double mu,
                        double beta, double tau);

// (20), three-splitting, proximal: separable per entry,
//   min_u mu/2 (a + sigma(u) - v)^2 + beta/2 (u - c)^2 + omega/2 (u - u^k)^2,
//   c = (WV)_{jk} + Lambda_{jk} / beta,
// solved exactly: closed form on each linear piece for relu and leaky_relu (the
// smaller of the pieces' minima), safeguarded Newton on the bracket that holds
// every stationary point for smooth activations.
mat update_U_proximal(activation act, const_mat_ref U, const_mat_ref V_prev, const_mat_ref V_cur,
                      const_mat_ref WV, const_mat_ref Lambda, double mu, double beta,
                      double omega);
// The scalar problem min_u mu/2 (sigma(u) - t)^2 + rho/2 (u - m)^2 behind (20).
double prox_scalar(activation act, double t, double m, double mu, double rho);

// (22), three-splitting, 1 <= i <= N-2, from stationarity of (17) in V_i:
//   (2 mu I + beta W_next^T W_next) V = mu (h(V_prev) + sigma(U_cur) + V_next - sigma(U_next))
//                                       + W_next^T (beta U_next - Lambda_next).
// Table II labels the row V_{N-1} and misplaces a bracket; this is the V_i update.
// V_prev = V_{i-1}^{k+1}, U_cur = U_i^{k+1}, V_next = V_{i+1}^k, U_next = U_{i+1}^k,
// W_next = W_{i+1}^{k+1}, Lambda_next = Lambda_{i+1}^k.
mat update_V_hidden_3s(activation act, const_mat_ref V_prev, const_mat_ref U_cur,
                       const_mat_ref V_next, const_mat_ref U_next, const_mat_ref W_next,
                       const_mat_ref Lambda_next, double mu, double beta);

// A for (23): h(V_{N-2}) + sigma(U_{N-1}).
mat block_target_3s(activation act, const_mat_ref V_prev, const_mat_ref U);

}  // namespace radmm::core
