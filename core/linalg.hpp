#pragma once
// The two linear systems of the RADMM updates, each solved on its cheaper side
// by a Cholesky factorisation; no explicit inverse is ever formed.
#include "core/types.hpp"

namespace radmm::core {

// W = B V^T (lambda I_d + beta V V^T)^{-1}, the minimiser of
//   lambda/2 ||W||^2 + 1/2 ||...||  with normal equations W (lambda I + beta V V^T) = B V^T.
// B is r x n, V is d x n. When n < d the push-through identity
//   V^T (lambda I_d + beta V V^T)^{-1} = (lambda I_n + beta V^T V)^{-1} V^T
// turns the d x d system into an n x n one. Used by (8), (18), (19).
mat ridge_right_solve(const_mat_ref B, const_mat_ref V, double lambda, double beta);

// X = (mu I_d + beta W^T W)^{-1} R for W q x d and R d x n. When q < d, Woodbury:
//   (mu I + beta W^T W)^{-1} = (I - beta W^T (mu I_q + beta W W^T)^{-1} W) / mu,
// a q x q system. Used by (13), (22) (with 2 mu) and (23).
mat gram_shift_solve(const_mat_ref W, double mu, double beta, const_mat_ref R);

// The same two operators in their direct d x d forms, for tests only.
mat ridge_right_solve_direct(const_mat_ref B, const_mat_ref V, double lambda, double beta);
mat gram_shift_solve_direct(const_mat_ref W, double mu, double beta, const_mat_ref R);

}  // namespace radmm::core
