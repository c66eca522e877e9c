#include "core/backprop.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace radmm::core {

bp_optimizer parse_bp_optimizer(const std::string& name) {
  if (name == "sgd") return bp_optimizer::sgd;
  if (name == "sgdm") return bp_optimizer::sgdm;
  if (name == "adam") return bp_optimizer::adam;
  throw std::invalid_argument("unknown optimizer '" + name + "' (expected sgd, sgdm or adam)");
}

std::string to_string(bp_optimizer opt) {
  switch (opt) {
    case bp_optimizer::sgd: return "sgd";
    case bp_optimizer::sgdm: return "sgdm";
    case bp_optimizer::adam: return "adam";
  }
  return "?";
}

namespace {

[[noreturn]] void bad(const std::string& field, const std::string& rule, double got) {
  throw std::invalid_argument("optimizer " + field + " must be " + rule + " (got " +
                              std::to_string(got) + ")");
}

void check_unit_interval(const char* field, double x) {
  if (!(x >= 0 && x < 1)) bad(field, "in [0, 1)", x);
}

}  // namespace

void bp_params::validate() const {
  if (!(std::isfinite(lr) && lr > 0)) bad("lr", "positive and finite", lr);
  if (!(std::isfinite(weight_decay) && weight_decay >= 0))
    bad("weight_decay", "non-negative and finite", weight_decay);
  check_unit_interval("momentum", momentum);
  check_unit_interval("beta1", beta1);
  check_unit_interval("beta2", beta2);
  if (!(std::isfinite(eps) && eps > 0)) bad("eps", "positive and finite", eps);
  if (!(std::isfinite(grad_clip) && grad_clip >= 0))
    bad("grad_clip", "non-negative and finite (0 turns clipping off)", grad_clip);
}

bp_params bp_preset(bp_optimizer opt, activation act, int layers, int width) {
  if (layers < 2)
    throw std::invalid_argument("--layers must be at least 2 (got " + std::to_string(layers) + ")");
  if (width < 1) throw std::invalid_argument("--width must be at least 1 (got " + std::to_string(width) + ")");
  bp_params p;
  p.opt = opt;
  p.momentum = opt == bp_optimizer::sgd ? 0.0 : 0.9;
  if (!act_is_piecewise_linear(act)) {  // sigmoid row (also tanh, sin)
    p.lr = 0.01;
    p.weight_decay = 1e-4;
    return p;
  }
  // relu row (also leaky_relu)
  if (opt == bp_optimizer::adam) {
    p.lr = 0.01;
    p.weight_decay = 1.0;
    return p;
  }
  const double delta = std::pow(10.0, std::floor(0.2 * layers));
  const double delta_d = delta * static_cast<double>(width);
  p.lr = 1e-10 / delta_d;
  p.weight_decay = 1e-10 * delta_d;
  return p;
}

double mse_loss_scale(Eigen::Index outputs, Eigen::Index samples) {
  if (outputs < 1 || samples < 1)
    throw std::invalid_argument("mse_loss_scale needs a non-empty batch (got " + std::to_string(outputs) +
                                " x " + std::to_string(samples) + ")");
  return 2.0 / (static_cast<double>(outputs) * static_cast<double>(samples));
}

bp_gradient backprop_gradient(const architecture& arch, const weight_set& W, const_mat_ref X,
                              const_mat_ref Y, double loss_scale) {
  arch.validate();
  check_shapes(arch, W);
  if (X.rows() != arch.input_dim)
    throw std::invalid_argument("input has " + std::to_string(X.rows()) + " features, model expects " +
                                std::to_string(arch.input_dim));
  if (Y.rows() != arch.output_dim)
    throw std::invalid_argument("target has " + std::to_string(Y.rows()) + " rows, model outputs " +
                                std::to_string(arch.output_dim));
  if (Y.cols() != X.cols())
    throw std::invalid_argument("target has " + std::to_string(Y.cols()) + " samples, input has " +
                                std::to_string(X.cols()));
  if (!(std::isfinite(loss_scale) && loss_scale > 0))
    throw std::invalid_argument("loss_scale must be positive and finite (got " +
                                std::to_string(loss_scale) + ")");

  const int N = arch.layers;
  const auto idx = [](int i) { return static_cast<std::size_t>(i); };
  // V[i], Z[i] for i = 1..N-1; V_0 is X itself (not copied).
  std::vector<mat> V(idx(N)), Z(idx(N));
  for (int i = 1; i < N; ++i) {
    if (i == 1)
      V[1] = block_forward(arch.act, W[1], X, &Z[1]);
    else
      V[idx(i)] = block_forward(arch.act, W[idx(i)], V[idx(i - 1)], &Z[idx(i)]);
  }

  bp_gradient out;
  out.grad.resize(idx(N) + 1);
  // G = dL/dV_N = loss_scale (V_N - Y).
  mat G = W[idx(N)] * V[idx(N - 1)];
  G -= Y;
  out.loss = 0.5 * loss_scale * G.squaredNorm();
  G *= loss_scale;
  out.grad[idx(N)].noalias() = G * V[idx(N - 1)].transpose();
  mat GV = W[idx(N)].transpose() * G;  // dL/dV_{N-1}
  G.resize(0, 0);

  for (int i = N - 1; i >= 1; --i) {
    // D = dL/dZ_i = G_i .* sigma'(Z_i); Z_i is no longer needed, so it holds D.
    mat& D = Z[idx(i)];
    D = derivative(arch.act, D);
    D.array() *= GV.array();
    if (i == 1) {
      out.grad[1].noalias() = D * X.transpose();
    } else {
      out.grad[idx(i)].noalias() = D * V[idx(i - 1)].transpose();
      // h_i is the identity for i >= 2, so G_{i-1} = G_i + W_i^T D_i.
      GV.noalias() += W[idx(i)].transpose() * D;
    }
    D.resize(0, 0);
    V[idx(i)].resize(0, 0);
  }
  return out;
}

bp_trainer::bp_trainer(const architecture& arch, bp_params params)
    : arch_(arch), params_(params) {
  arch_.validate();
  params_.validate();
}

void bp_trainer::reset() {
  t_ = 0;
  buf_.clear();
  sq_.clear();
  grad_norms_.clear();
  global_norm_ = 0;
}

bool bp_trainer::last_step_finite() const { return std::isfinite(global_norm_); }

void bp_trainer::step(weight_set& W, const weight_set& grad) {
  check_shapes(arch_, W);
  check_shapes(arch_, grad);
  const int N = arch_.layers;
  const auto idx = [](int i) { return static_cast<std::size_t>(i); };

  grad_norms_.assign(idx(N) + 1, 0.0);
  double total_sq = 0;
  for (int i = 1; i <= N; ++i) {
    const double sq = grad[idx(i)].squaredNorm();
    grad_norms_[idx(i)] = std::sqrt(sq);
    total_sq += sq;
  }
  global_norm_ = std::sqrt(total_sq);
  // torch.nn.utils.clip_grad_norm_: coefficient clamped at 1 (NaN norm: no rescale,
  // the NaN reaches the weights anyway).
  double scale = 1.0;
  if (params_.grad_clip > 0) {
    const double coef = params_.grad_clip / (global_norm_ + 1e-6);
    if (coef < 1.0) scale = coef;
  }

  if (t_ == 0) {
    // State allocated at the first step, as PyTorch does.
    const bool momentum = params_.opt == bp_optimizer::sgdm && params_.momentum != 0;
    const bool adam = params_.opt == bp_optimizer::adam;
    buf_.assign(idx(N) + 1, mat());
    sq_.assign(idx(N) + 1, mat());
    for (int i = 1; i <= N; ++i) {
      if (adam || momentum) buf_[idx(i)] = mat::Zero(W[idx(i)].rows(), W[idx(i)].cols());
      if (adam) sq_[idx(i)] = mat::Zero(W[idx(i)].rows(), W[idx(i)].cols());
    }
  }
  ++t_;

  const double lr = params_.lr, wd = params_.weight_decay;
  mat d;
  for (int i = 1; i <= N; ++i) {
    mat& w = W[idx(i)];
    // d = g + wd W, with g clipped.
    if (scale != 1.0)
      d.noalias() = scale * grad[idx(i)];
    else
      d = grad[idx(i)];
    if (wd != 0) d.noalias() += wd * w;

    switch (params_.opt) {
      case bp_optimizer::sgd:
        w.noalias() -= lr * d;
        break;
      case bp_optimizer::sgdm: {
        if (params_.momentum == 0) {
          w.noalias() -= lr * d;
          break;
        }
        mat& b = buf_[idx(i)];
        if (t_ == 1)
          b = d;
        else
          b = params_.momentum * b + d;
        w.noalias() -= lr * b;
        break;
      }
      case bp_optimizer::adam: {
        const double b1 = params_.beta1, b2 = params_.beta2;
        const double bc1 = 1.0 - std::pow(b1, static_cast<double>(t_));
        const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, static_cast<double>(t_)));
        const double step_size = lr / bc1;
        mat& m = buf_[idx(i)];
        mat& v = sq_[idx(i)];
        m = b1 * m + (1.0 - b1) * d;
        v.array() = b2 * v.array() + (1.0 - b2) * d.array().square();
        // addcdiv order: step_size * (m / denom).
        w.array() -= step_size * (m.array() / (v.array().sqrt() / bc2_sqrt + params_.eps));
        break;
      }
    }
  }
}

}  // namespace radmm::core
