#pragma once
// A training run's schedule, shared by the serial sweep and the parallel
// regional update so both walk the same batches, record the same metrics and
// end with the same weights (bit for bit).
//
// Full batch (the default): one reset, then K iterations; metrics after every
// `metrics_every`-th iteration and the last. A parallel run cuts the K
// iterations into STEPs of `sync_every` (the workers pipeline within a STEP).
// Mini-batches: an epoch walks a seeded permutation of the training columns in
// batches of `batch_size`, running `updates_per_batch` updates on each. At each
// new batch V, U and Lambda are re-initialised by a forward pass of the current
// weights (README "Mini-batches"); step-sizes keep expanding per update.
// Metrics are recorded at the end of each epoch; an iteration is updates
// divided by batches (the paper's footnote 3).
#include "core/backprop.hpp"
#include "core/data.hpp"
#include "core/hyper.hpp"
#include "core/metrics.hpp"
#include "core/model.hpp"
#include "protocol/transport.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace radmm::coordinator {

struct problem {
  core::architecture arch;
  core::hyper_params hp;
  core::weight_set W0;
  core::mat X_train, Y_train, X_test, Y_test;  // scaled, bias row included
};

struct schedule {
  long iterations = 100;          // K
  std::int64_t batch_size = 0;    // 0: full batch
  long updates_per_batch = 1;
  std::uint64_t seed = 1;         // batch order
  long metrics_every = 1;
  long sync_every = 10;           // parallel, full batch: iterations per STEP
  // A layer whose constraint residual (||h(V_{i-1}) + sigma(.) - V_i||, or
  // ||W_i V_{i-1} - U_i|| / ||W_N V_{N-1} - V_N||) passes this bound at a
  // recorded iteration stops the run as diverged; 0: no bound.
  double residual_bound = 0;

  bool full_batch(std::int64_t n) const { return batch_size <= 0 || batch_size >= n; }
};

// Called with each metrics row as soon as it is known; may throw to stop a run.
using metrics_callback = std::function<void(const core::iteration_metrics&)>;

// What each worker of a parallel run reported in its BYE (index 1..N).
struct worker_report {
  double compute_s = 0, wait_s = 0, send_s = 0;
  long messages_in = 0, messages_out = 0;
  std::size_t block_bytes = 0;
  long peak_rss_kb = 0;
};

struct run_result {
  core::weight_set W;
  std::vector<core::iteration_metrics> metrics;
  std::vector<worker_report> workers;  // parallel runs only
  long updates = 0;
  double seconds = 0;
  bool interrupted = false;  // stopped at a STEP boundary on request (W is then not set)
};

struct loaded_checkpoint;

// Checkpointing, resuming and stopping (coordinator/checkpoint.hpp). With
// checkpoints, full-batch runs cut their iterations into STEPs at every
// multiple of `checkpoint_every`; mini-batch runs checkpoint at epoch ends.
struct run_control {
  std::string checkpoint_root;  // empty: no checkpoints
  long checkpoint_every = 0;    // updates between checkpoints
  std::string config_digest;    // ties checkpoints to the run's config
  const loaded_checkpoint* resume = nullptr;
  std::function<bool()> stop_requested;  // polled at STEP boundaries
  bool checkpoint_on_stop = false;
};

run_result train_serial(const problem& p, const schedule& s, const metrics_callback& on_metrics,
                        const run_control* control = nullptr);

// Backprop baselines on the same model, data, initialisation and schedule:
// one optimizer step per update (full batch: per iteration; mini-batches: per
// batch and update), the loss being nn.MSELoss's mean (core::mse_loss_scale).
// Metrics rows carry J and the MSEs (L = J; residuals NaN); per-layer gradient
// norms at each recorded point go to `grad_norms` (row: iteration, norms 1..N).
run_result train_backprop(const problem& p, const schedule& s, const core::bp_params& bp,
                          const metrics_callback& on_metrics, std::vector<std::vector<double>>* grad_norms);

// J and the train/test MSEs of the plain forward pass of W (no ADMM terms).
core::iteration_metrics forward_metrics(const problem& p, const core::weight_set& W);

// The output refit (README "Defaults"): the ADMM variable V_{N-1} is only
// softly tied to the forward pass (the penalty mu of (6)), so W_N fits V_{N-1}
// rather than the activations the model computes. One exact block step of
// problem (5) itself fixes that: W_N = argmin 1/2 ||W_N F_{N-1} - Y||^2 +
// lambda/2 ||W_N||^2. Replaces W[N]; returns the forward metrics after it.
core::iteration_metrics refit_output_layer(const problem& p, core::weight_set& W);

// Drives a parallel run from the coordinator's endpoint: INIT, STEPs, SYNCs,
// QUIT. `health_check` runs whenever no message came within a poll interval
// and throws when a worker has died. Every wait has `deadline`.
struct parallel_options {
  std::chrono::milliseconds poll{50};
  std::chrono::milliseconds deadline{std::chrono::minutes(10)};
  std::function<void()> health_check;
};
run_result train_parallel(const problem& p, const schedule& s, protocol::transport& coordinator,
                          const parallel_options& opt, const metrics_callback& on_metrics,
                          const run_control* control = nullptr);

// The step-size in force for the update that produced iterate `updates`
// (repeated multiplication, exactly as the engines do it).
double step_size_for(double initial, double expansion, long updates);

}  // namespace radmm::coordinator
