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

// The matrix forms are Eigen array expressions, so relu and sigmoid (exp)
// vectorise; sigmoid keeps its overflow-free form: with e = exp(-|x|),
// 1 / (1 + e) for x >= 0 and e / (1 + e) otherwise.
mat apply(activation a, const_mat_ref z) {
  mat out(z.rows(), z.cols());
  const auto x = z.array();
  switch (a) {
    case activation::relu: out.array() = x.max(0.0); break;
    case activation::leaky_relu: out.array() = (x > 0).select(x, leaky_relu_slope * x); break;
    case activation::sigmoid: {
      const Eigen::ArrayXXd e = (-x.abs()).exp();
      out.array() = (x >= 0).select(1.0 / (1.0 + e), e / (1.0 + e));
      break;
    }
    case activation::tanh: out.array() = x.tanh(); break;
    case activation::sin: out.array() = x.sin(); break;
  }
  return out;
}

mat derivative(activation a, const_mat_ref z) {
  mat out(z.rows(), z.cols());
  const auto x = z.array();
  switch (a) {
    case activation::relu: out.array() = (x > 0).select(Eigen::ArrayXXd::Ones(z.rows(), z.cols()), 0.0); break;
    case activation::leaky_relu:
      out.array() = (x > 0).select(Eigen::ArrayXXd::Ones(z.rows(), z.cols()), leaky_relu_slope);
      break;
    case activation::sigmoid: {
      const Eigen::ArrayXXd e = (-x.abs()).exp();
      // s (1 - s) = e / (1 + e)^2 on both sides.
      out.array() = e / ((1.0 + e) * (1.0 + e));
      break;
    }
    case activation::tanh: {
      const Eigen::ArrayXXd t = x.tanh();
      out.array() = 1.0 - t * t;
      break;
    }
    case activation::sin: out.array() = x.cos(); break;
  }
  return out;
}

void apply_inplace(activation a, mat& z) { z = apply(a, z); }

}  // namespace radmm::core
