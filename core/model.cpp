#include "core/model.hpp"

#include "core/rng.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace radmm::core {

Eigen::Index architecture::rows_of(int i) const { return i == layers ? output_dim : width; }

Eigen::Index architecture::cols_of(int i) const { return i == 1 ? input_dim : width; }

void architecture::validate() const {
  if (layers < 2)
    throw std::invalid_argument("--layers must be at least 2 (got " + std::to_string(layers) + ")");
  if (input_dim < 1) throw std::invalid_argument("input width must be at least 1");
  if (output_dim < 1) throw std::invalid_argument("output width must be at least 1");
  if (width < input_dim)
    throw std::invalid_argument("--width " + std::to_string(width) +
                                " is smaller than the input width " + std::to_string(input_dim));
}

mat lift(const_mat_ref v_prev, Eigen::Index width) {
  if (v_prev.rows() == width) return v_prev;
  mat out = mat::Zero(width, v_prev.cols());
  out.topRows(v_prev.rows()) = v_prev;
  return out;
}

void add_lifted(mat& acc, const_mat_ref v_prev) { acc.topRows(v_prev.rows()) += v_prev; }

mat block_forward(activation act, const_mat_ref W, const_mat_ref v_prev, mat* pre) {
  mat z = W * v_prev;
  if (pre) *pre = z;
  apply_inplace(act, z);
  add_lifted(z, v_prev);
  return z;
}

mat predict(const architecture& arch, const weight_set& W, const_mat_ref X) {
  check_shapes(arch, W);
  if (X.rows() != arch.input_dim)
    throw std::invalid_argument("input has " + std::to_string(X.rows()) + " features, model expects " +
                                std::to_string(arch.input_dim));
  mat v = X;
  for (int i = 1; i < arch.layers; ++i) v = block_forward(arch.act, W[i], v);
  return W[arch.layers] * v;
}

std::vector<mat> forward_all(const architecture& arch, const weight_set& W, const_mat_ref X) {
  check_shapes(arch, W);
  std::vector<mat> V(static_cast<std::size_t>(arch.layers) + 1);
  V[0] = X;
  for (int i = 1; i < arch.layers; ++i) V[i] = block_forward(arch.act, W[i], V[i - 1]);
  V[arch.layers] = W[arch.layers] * V[arch.layers - 1];
  return V;
}

weight_set kaiming_normal(const architecture& arch, std::uint64_t seed) {
  arch.validate();
  rng gen(seed);
  weight_set W(static_cast<std::size_t>(arch.layers) + 1);
  for (int i = 1; i <= arch.layers; ++i) {
    const Eigen::Index r = arch.rows_of(i), c = arch.cols_of(i);
    const double stddev = std::sqrt(2.0 / static_cast<double>(c));
    W[i].resize(r, c);
    for (Eigen::Index k = 0; k < W[i].size(); ++k) W[i].data()[k] = stddev * gen.normal();
  }
  return W;
}

void check_shapes(const architecture& arch, const weight_set& W) {
  if (static_cast<int>(W.size()) != arch.layers + 1)
    throw std::invalid_argument("expected " + std::to_string(arch.layers) + " weight matrices, got " +
                                std::to_string(static_cast<int>(W.size()) - 1));
  for (int i = 1; i <= arch.layers; ++i) {
    if (W[i].rows() != arch.rows_of(i) || W[i].cols() != arch.cols_of(i))
      throw std::invalid_argument("W_" + std::to_string(i) + " is " + std::to_string(W[i].rows()) + "x" +
                                  std::to_string(W[i].cols()) + ", expected " +
                                  std::to_string(arch.rows_of(i)) + "x" + std::to_string(arch.cols_of(i)));
  }
}

}  // namespace radmm::core
