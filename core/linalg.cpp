#include "core/linalg.hpp"

#include <Eigen/Cholesky>

#include <limits>

namespace radmm::core {
namespace {

// Solves G X = R for symmetric positive (semi)definite G given by its lower
// triangle. LLT first; a semidefinite G (lambda = 0 with rank-deficient data)
// falls back to LDLT. A G that is neither (NaN or Inf from a diverged
// iteration) yields a non-finite X, which the sweep's divergence check then
// reports with its layer and iteration.
mat spd_solve(mat& G, const_mat_ref R) {
  Eigen::LLT<mat, Eigen::Lower> llt(G);
  if (llt.info() == Eigen::Success) return llt.solve(R);
  G.triangularView<Eigen::StrictlyUpper>() = G.transpose().triangularView<Eigen::StrictlyUpper>();
  Eigen::LDLT<mat, Eigen::Lower> ldlt(G);
  if (ldlt.info() != Eigen::Success) return mat::Constant(R.rows(), R.cols(), std::numeric_limits<double>::quiet_NaN());
  return ldlt.solve(R);
}

// G = shift I + beta A A^T (lower triangle only, via a symmetric rank-k update).
mat shifted_gram(const_mat_ref A, double shift, double beta) {
  mat G = mat::Zero(A.rows(), A.rows());
  G.diagonal().setConstant(shift);
  G.selfadjointView<Eigen::Lower>().rankUpdate(A, beta);
  return G;
}

}  // namespace

mat ridge_right_solve(const_mat_ref B, const_mat_ref V, double lambda, double beta) {
  const Eigen::Index d = V.rows(), n = V.cols();
  if (n < d) {
    // W = B (lambda I_n + beta V^T V)^{-1} V^T = ((G^{-1} B^T)^T) V^T, G symmetric.
    mat G = shifted_gram(V.transpose(), lambda, beta);
    mat S = spd_solve(G, B.transpose());  // n x r
    return S.transpose() * V.transpose();
  }
  // W^T = G^{-1} (V B^T), G = lambda I_d + beta V V^T.
  mat G = shifted_gram(V, lambda, beta);
  mat rhs = V * B.transpose();  // d x r
  return spd_solve(G, rhs).transpose();
}

mat gram_shift_solve(const_mat_ref W, double mu, double beta, const_mat_ref R) {
  const Eigen::Index q = W.rows(), d = W.cols();
  if (q < d) {
    mat G = shifted_gram(W, mu, beta);  // mu I_q + beta W W^T
    mat WR = W * R;                     // q x n
    mat T = spd_solve(G, WR);
    mat X = R;
    X.noalias() -= beta * (W.transpose() * T);
    X /= mu;
    return X;
  }
  mat G = shifted_gram(W.transpose(), mu, beta);  // mu I_d + beta W^T W
  return spd_solve(G, R);
}

mat ridge_right_solve_direct(const_mat_ref B, const_mat_ref V, double lambda, double beta) {
  mat G = lambda * mat::Identity(V.rows(), V.rows()) + beta * V * V.transpose();
  return (G.ldlt().solve(V * B.transpose())).transpose();
}

mat gram_shift_solve_direct(const_mat_ref W, double mu, double beta, const_mat_ref R) {
  mat G = mu * mat::Identity(W.cols(), W.cols()) + beta * W.transpose() * W;
  return G.ldlt().solve(R);
}

}  // namespace radmm::core
