#pragma once
// The serial RADMM sweeps: Algorithm 1 (two-splitting) and Algorithm 2
// (three-splitting), proximal linearized or proximal, on one batch at a time.
#include "core/checkpoint.hpp"
#include "core/hyper.hpp"
#include "core/metrics.hpp"
#include "core/model.hpp"

#include <cstdint>
#include <vector>

namespace radmm::core {

// Every block variable of the sweep, indexed as in the paper.
struct admm_state {
  weight_set W;             // W_1 .. W_N
  std::vector<mat> V;       // V_0 (= X of the batch) .. V_N
  std::vector<mat> U;       // 3s: U_1 .. U_{N-1}
  std::vector<mat> Lambda;  // 2s: Lambda_N only (the paper's Lambda); 3s: Lambda_1 .. Lambda_N
  // Cached products reused across updates (computed once, see README "Cost"):
  //   2s: pre[i] = W_i V_{i-1} at the latest iterate (linearisation point of (10));
  //   3s: pre[i] = W_i^{k+1} V_{i-1}^{k+1}, shared by (21)/(20), (25) and the metrics.
  std::vector<mat> pre;
  mat Y;                    // targets of the batch
  std::vector<double> tau, nu;  // step-sizes in force, layers 1 .. N-1
  long iteration = 0;           // iterations done (k)
};

// Forward-pass initialisation of Algorithms 1 and 2 on a batch: V_0 = X,
// V_i (and U_i) from the plain forward pass, V_N = W_N V_{N-1}, every Lambda = 0.
void init_block_variables(const architecture& arch, algorithm algo, admm_state& s,
                          const_mat_ref X, const_mat_ref Y);

// The ADMM terms of every layer at the current iterate (no forward-pass terms).
// Computed from the state; the sweep fills the same numbers on the fly.
std::vector<layer_terms> admm_terms(const architecture& arch, algorithm algo, const admm_state& s);

// Plain forward pass contributions: adds ||W_N F_{N-1} - Y||^2 to terms[N]
// (train or test field), block by block exactly as the pipeline does it.
void add_forward_terms(const architecture& arch, const weight_set& W, const_mat_ref X,
                       const_mat_ref Y, bool test_rows, std::vector<layer_terms>& terms);

// Per-layer metric terms, shared by the serial sweep and the layer machines so
// both compute the same numbers the same way (see core::mul).
// At a reset point (forward initialisation); 2s ignores U and Lambda.
layer_terms initial_hidden_terms(activation act, algorithm algo, const_mat_ref W,
                                 const_mat_ref V_prev, const_mat_ref V, const_mat_ref U,
                                 const_mat_ref Lambda);
layer_terms initial_last_terms(const_mat_ref W_N, const_mat_ref V_prev, const_mat_ref V_N,
                               const_mat_ref Lambda_N, const_mat_ref Y);
// After an iteration. A is the target of the 2s V update; pre = W_i V_{i-1}.
layer_terms hidden_terms_2s(const_mat_ref W, const_mat_ref A, const_mat_ref V);
layer_terms hidden_terms_3s(activation act, const_mat_ref W, const_mat_ref V_prev,
                            const_mat_ref pre, const_mat_ref U, const_mat_ref V,
                            const_mat_ref Lambda);
layer_terms last_terms(const_mat_ref W_N, const_mat_ref WV, const_mat_ref V_N,
                       const_mat_ref Lambda_N, const_mat_ref Y);
// ||W_N F_{N-1} - Y||^2, the last step of the plain forward pass.
double forward_output_sq(const_mat_ref W_N, const_mat_ref F, const_mat_ref Y);

class serial_engine {
 public:
  serial_engine(architecture arch, hyper_params hp, weight_set W0);

  // Starts (or restarts, for a new mini-batch) the sweep on a batch.
  void set_batch(const_mat_ref X, const_mat_ref Y);
  // One iteration k -> k+1 of Algorithm 1 or 2. When `terms` is given, it
  // receives each layer's contributions at the new iterate.
  void iterate(std::vector<layer_terms>* terms = nullptr);

  const architecture& arch() const { return arch_; }
  const hyper_params& hyper() const { return hp_; }
  const admm_state& state() const { return s_; }
  admm_state& mutable_state() { return s_; }
  const weight_set& weights() const { return s_.W; }

  // Checkpoints (core/checkpoint.hpp): every layer's block, index 1..N.
  std::vector<block_state> save_blocks() const;
  // Restores a saved state; X, Y are the batch the state belongs to (the full
  // training set for full-batch runs). Without `full_state` only the weights,
  // step-sizes and iteration count are restored (the next batch re-initialises
  // the rest). Throws std::invalid_argument on shapes.
  void restore_blocks(const std::vector<block_state>& blocks, const_mat_ref X, const_mat_ref Y, bool full_state);

 private:
  void iterate_2s(std::vector<layer_terms>* terms);
  void iterate_3s(std::vector<layer_terms>* terms);
  void expand_step_sizes();

  architecture arch_;
  hyper_params hp_;
  admm_state s_;
};

// Mini-batches of one epoch: a permutation of the n training columns seeded by
// (seed, epoch), cut into consecutive batches of batch_size (the last may be
// smaller). batch_size 0 or >= n: one batch holding every column in order.
std::vector<std::vector<std::int64_t>> epoch_batches(std::int64_t n, std::int64_t batch_size,
                                                     std::uint64_t seed, long epoch);

}  // namespace radmm::core
