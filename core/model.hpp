#pragma once
// The residual network of problem (5), samples as columns:
//   V_0 = X,  V_i = h_i(V_{i-1}) + sigma(W_i V_{i-1}) (i < N),  V_N = W_N V_{N-1},
// with h_i the identity for i >= 2 and h_1 the zero-padding of the input to the
// hidden width d (the identity when d = d0, as in the paper).
// Weights are indexed as in the paper: W[1] .. W[N]; W[0] is unused (empty).
#include "core/activation.hpp"
#include "core/types.hpp"

#include <cstdint>
#include <vector>

namespace radmm::core {

struct architecture {
  int layers = 0;      // N >= 2
  int input_dim = 0;   // d0 (after the optional bias feature)
  int width = 0;       // d >= d0
  int output_dim = 0;  // q
  activation act = activation::relu;

  // Shape of W_i: rows = outputs.
  Eigen::Index rows_of(int i) const;
  Eigen::Index cols_of(int i) const;
  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

using weight_set = std::vector<mat>;  // index 1..N

// h_i(V): V itself, or V zero-padded to `width` rows (only layer 1 can pad).
mat lift(const_mat_ref v_prev, Eigen::Index width);
// acc += h(V): adds V into the top rows of acc.
void add_lifted(mat& acc, const_mat_ref v_prev);

// One residual block: h(V_prev) + sigma(W V_prev). `pre` receives W V_prev.
mat block_forward(activation act, const_mat_ref W, const_mat_ref v_prev, mat* pre = nullptr);
// Plain forward pass: returns V_N = W_N V_{N-1}.
mat predict(const architecture& arch, const weight_set& W, const_mat_ref X);
// All activations V_0 .. V_N.
std::vector<mat> forward_all(const architecture& arch, const weight_set& W, const_mat_ref X);

// Kaiming-normal initialisation (He et al., fan-in mode, gain sqrt(2)):
// W_i ~ N(0, 2 / cols(W_i)), drawn W_1 first, column-major within each matrix.
weight_set kaiming_normal(const architecture& arch, std::uint64_t seed);

// Checks that every W_i has the shape `arch` implies; throws naming the layer.
void check_shapes(const architecture& arch, const weight_set& W);

}  // namespace radmm::core
