#include "core/activation.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace radmm::core {

activation parse_activation(const std::string& name) {
  if (name == "relu") return activation::relu;
  if (name == "leaky_relu" || name == "leaky-relu") return activation::leaky_relu;
  if (name == "sigmoid") return activation::sigmoid;
  if (name == "tanh") return activation::tanh;
  if (name == "sin") return activation::sin;
  throw std::invalid_argument("unknown activation '" + name +
                              "' (expected relu, leaky_relu, sigmoid, tanh or sin)");
}

std::string to_string(activation a) {
  switch (a) {
    case activation::relu: return "relu";
    case activation::leaky_relu: return "leaky_relu";
    case activation::sigmoid: return "sigmoid";
    case activation::tanh: return "tanh";
    case activation::sin: return "sin";
  }
  return "?";
}

namespace {

// Overflow-free logistic function: never evaluates exp of a positive number.
inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

}  // namespace

double act_value(activation a, double x) {
  switch (a) {
    case activation::relu: return x > 0 ? x : 0.0;
    case activation::leaky_relu: return x > 0 ? x : leaky_relu_slope * x;
    case activation::sigmoid: return sigmoid(x);
    case activation::tanh: return std::tanh(x);
    case activation::sin: return std::sin(x);
  }
  return 0.0;
}

double act_derivative(activation a, double x) {
  switch (a) {
    case activation::relu: return x > 0 ? 1.0 : 0.0;  // relu'(0) = 0
    case activation::leaky_relu: return x > 0 ? 1.0 : leaky_relu_slope;
    case activation::sigmoid: {
      const double s = sigmoid(x);
      return s * (1.0 - s);
    }
    case activation::tanh: {
      const double t = std::tanh(x);
      return 1.0 - t * t;
    }
    case activation::sin: return std::cos(x);
  }
  return 0.0;
}

double act_second_derivative(activation a, double x) {
  switch (a) {
    case activation::relu:
    case activation::leaky_relu: return 0.0;
    case activation::sigmoid: {
      const double s = sigmoid(x);
      return s * (1.0 - s) * (1.0 - 2.0 * s);
    }
    case activation::tanh: {
      const double t = std::tanh(x);
      return -2.0 * t * (1.0 - t * t);
    }
    case activation::sin: return -std::sin(x);
  }
  return 0.0;
}

bool act_is_piecewise_linear(activation a) {
  return a == activation::relu || a == activation::leaky_relu;
}

activation_bounds bounds_of(activation a) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  switch (a) {
    case activation::relu: return {inf, 1.0, 0.0};
    case activation::leaky_relu: return {inf, 1.0, 0.0};
    // |s(1-s)(1-2s)| peaks at 1/(6 sqrt 3).
    case activation::sigmoid: return {1.0, 0.25, 0.0962250448649376};
    // |-2 t (1-t^2)| peaks at 4/(3 sqrt 3).
    case activation::tanh: return {1.0, 1.0, 0.769800358919501};
    case activation::sin: return {1.0, 1.0, 1.0};
  }
  return {inf, inf, inf};
}

mat apply(activation a, const_mat_ref z) {
  mat out(z.rows(), z.cols());
  const Eigen::Index n = z.size();
  const double* in = z.data();
  double* o = out.data();
  if (z.outerStride() == z.rows()) {
    for (Eigen::Index k = 0; k < n; ++k) o[k] = act_value(a, in[k]);
  } else {
    for (Eigen::Index j = 0; j < z.cols(); ++j)
      for (Eigen::Index i = 0; i < z.rows(); ++i) out(i, j) = act_value(a, z(i, j));
  }
  return out;
}

mat derivative(activation a, const_mat_ref z) {
  mat out(z.rows(), z.cols());
  for (Eigen::Index j = 0; j < z.cols(); ++j)
    for (Eigen::Index i = 0; i < z.rows(); ++i) out(i, j) = act_derivative(a, z(i, j));
  return out;
}

void apply_inplace(activation a, mat& z) {
  double* p = z.data();
  const Eigen::Index n = z.size();
  switch (a) {
    case activation::relu:
      for (Eigen::Index k = 0; k < n; ++k) p[k] = p[k] > 0 ? p[k] : 0.0;
      break;
    default:
      for (Eigen::Index k = 0; k < n; ++k) p[k] = act_value(a, p[k]);
  }
}

}  // namespace radmm::core
