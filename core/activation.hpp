#pragma once
// Activations sigma_i of problem (5) with their derivatives and the bounds
// psi_0 >= |sigma|, psi_1 >= |sigma'|, psi_2 >= |sigma''| of Section III-B
// (infinite where the activation is unbounded).
#include "core/types.hpp"

#include <string>

namespace radmm::core {

enum class activation { relu, leaky_relu, sigmoid, tanh, sin };

// Negative-side slope of leaky_relu.
inline constexpr double leaky_relu_slope = 0.01;

// "relu", "leaky_relu", "sigmoid", "tanh", "sin"; throws std::invalid_argument otherwise.
activation parse_activation(const std::string& name);
std::string to_string(activation a);

// Scalar forms (relu'(0) = 0, leaky_relu'(0) = slope; sigmoid in its overflow-free form).
double act_value(activation a, double x);
double act_derivative(activation a, double x);
double act_second_derivative(activation a, double x);
bool act_is_piecewise_linear(activation a);

struct activation_bounds {
  double psi0, psi1, psi2;
};
activation_bounds bounds_of(activation a);

// Elementwise over a matrix.
mat apply(activation a, const_mat_ref z);
mat derivative(activation a, const_mat_ref z);
void apply_inplace(activation a, mat& z);

}  // namespace radmm::core
