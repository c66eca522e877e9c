#pragma once
// Backpropagation baselines on the residual network of problem (5): the SGD,
// SGDM and Adam runs the paper compares RADMM against (Section VII, settings in
// Appendix IX-C). The paper trained them with PyTorch, so the optimizers mirror
// torch.optim.SGD (dampening 0, no Nesterov) and torch.optim.Adam (no AMSGrad)
// update for update, including where weight decay enters.
//
// Loss. backprop_gradient differentiates
//   L(W) = loss_scale * 1/2 ||V_N - Y||_F^2,   V_N = W_N V_{N-1} (model.hpp),
// and leaves the ridge term to the optimizer's weight decay (grad += wd * W_i,
// the PyTorch convention; d/dW of wd/2 ||W||_F^2 is wd * W). Two choices matter:
//  * loss_scale = 2 / (q n) gives nn.MSELoss() (reduction "mean"), which is
//    1/(q n) ||V_N - Y||_F^2 = (2/(q n)) * 1/2 ||V_N - Y||_F^2 over a q x n batch.
//    Note the 2: loss_scale = 1/(q n) would be half of MSELoss and halve every
//    effective learning rate of SGD (Adam is scale-invariant up to eps). This is
//    what the paper's BP baselines use; mse_loss_scale() returns it.
//  * loss_scale = 1 gives the data term of the ADMM objective,
//    1/2 ||V_N - Y||_F^2; with weight_decay = lambda the optimizer then steps
//    along the gradient of the full objective J = 1/2||V_N - Y||^2 + lambda/2 sum ||W_i||^2.
#include "core/activation.hpp"
#include "core/model.hpp"
#include "core/types.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace radmm::core {

enum class bp_optimizer { sgd, sgdm, adam };

// "sgd" | "sgdm" | "adam"; throws std::invalid_argument listing the choices otherwise.
bp_optimizer parse_bp_optimizer(const std::string& name);
std::string to_string(bp_optimizer opt);

struct bp_params {
  bp_optimizer opt = bp_optimizer::adam;
  double lr = 0.01;
  double weight_decay = 0;  // added to the gradient as wd * W_i (SGD and Adam alike)
  double momentum = 0.9;    // sgdm only; plain sgd ignores it
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam only
  // 0: off. Otherwise the raw gradients (before weight decay) are rescaled so
  // their global Frobenius norm is at most grad_clip, as
  // torch.nn.utils.clip_grad_norm_ does: g *= min(1, grad_clip / (||g|| + 1e-6)).
  double grad_clip = 0;

  // Throws std::invalid_argument naming the field: lr <= 0, weight_decay < 0,
  // momentum or betas outside [0, 1), eps <= 0, grad_clip < 0, or any non-finite value.
  void validate() const;
};

// The Appendix IX-C settings for (optimizer, activation, N, d):
//  sigmoid: lr = 0.01, weight decay = 1e-4, momentum = 0.9 (sgdm), for all three;
//  relu:    sgd/sgdm lr = 1e-10 / (delta d), weight decay = 1e-10 delta d,
//           delta = 10^floor(0.2 N), momentum = 0.9 (sgdm);
//           adam lr = 0.01, weight decay = 1.
// The paper's "10^{-10}/\delta d" is read as 1e-10 / (delta * d), the reading that
// makes the learning rate shrink as the weight decay grows.
// The paper gives no BP settings for the other activations: leaky_relu takes the
// relu row (piecewise linear, unbounded) and tanh, sin the sigmoid row (bounded).
// Plain sgd gets momentum = 0 (the paper's "SGD" is the momentum-free one).
// Throws std::invalid_argument for layers < 2 or width < 1.
bp_params bp_preset(bp_optimizer opt, activation act, int layers, int width);

// loss_scale that makes L equal nn.MSELoss's mean over a q x n batch: 2 / (q n).
double mse_loss_scale(Eigen::Index outputs, Eigen::Index samples);

struct bp_gradient {
  weight_set grad;  // dL/dW_i, i = 1..N (grad[0] empty); weight decay not included
  double loss;      // L = loss_scale * 1/2 ||V_N - Y||_F^2 at W
};

// One forward pass keeping Z_i = W_i V_{i-1} and V_i, then reverse mode through
// the blocks. With G_i = dL/dV_i:
//   G_N = loss_scale (V_N - Y),         dL/dW_N = G_N V_{N-1}^T,   G_{N-1} = W_N^T G_N,
//   D_i = G_i .* sigma'(Z_i),           dL/dW_i = D_i V_{i-1}^T,
//   G_{i-1} = h_i^T(G_i) + W_i^T D_i    (h_i^T = identity for i >= 2; G_0 is not formed).
// X is d0 x n, Y is q x n. Throws std::invalid_argument on shape mismatches or a
// non-finite / non-positive loss_scale.
bp_gradient backprop_gradient(const architecture& arch, const weight_set& W, const_mat_ref X,
                              const_mat_ref Y, double loss_scale);

// A first-order optimizer with its state (momentum buffers, Adam moments, step
// count). step() applies one update in place, exactly one optimizer.step() of
// PyTorch given the same gradient:
//  sgd:  d = g + wd W;                                  W -= lr d
//  sgdm: d = g + wd W;  b = d (first step), else b = momentum b + d;   W -= lr b
//  adam: d = g + wd W;  m = beta1 m + (1 - beta1) d;  v = beta2 v + (1 - beta2) d.^2;
//        W -= lr / (1 - beta1^t) * m ./ (sqrt(v) / sqrt(1 - beta2^t) + eps)
// (g already clipped when grad_clip > 0). A non-finite gradient is applied as it
// is, like PyTorch; last_grad_norms() makes explosion visible before it turns
// into NaN, and last_step_finite() tells the caller to stop.
class bp_trainer {
 public:
  // Validates arch and params (std::invalid_argument).
  bp_trainer(const architecture& arch, bp_params params);

  // W and grad must both have the shapes arch implies.
  void step(weight_set& W, const weight_set& grad);

  const bp_params& params() const { return params_; }
  const architecture& arch() const { return arch_; }
  // Number of step() calls so far (Adam's t after the last step).
  std::int64_t steps() const { return t_; }

  // Frobenius norms ||dL/dW_i|| of the raw gradient passed to the last step
  // (before clipping and weight decay), indexed like W: [1..N], [0] = 0. Empty
  // before the first step.
  const std::vector<double>& last_grad_norms() const { return grad_norms_; }
  // sqrt(sum_i ||dL/dW_i||^2) of that gradient: the norm clipping acts on.
  double last_global_grad_norm() const { return global_norm_; }
  // False when the last gradient held a NaN or infinity.
  bool last_step_finite() const;

  // Forgets the optimizer state (as if freshly constructed).
  void reset();

 private:
  architecture arch_;
  bp_params params_;
  std::int64_t t_ = 0;
  weight_set buf_;  // sgdm momentum buffers, adam first moments
  weight_set sq_;   // adam second moments
  std::vector<double> grad_norms_;
  double global_norm_ = 0;
};

}  // namespace radmm::core
