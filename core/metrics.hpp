#pragma once
// Per-iteration metrics, built from per-layer contributions so that a serial
// run and a parallel run (where each worker only sees its own block) sum the
// same numbers in the same order and agree to the last bit.
#include "core/activation.hpp"
#include "core/hyper.hpp"
#include "core/types.hpp"

#include <string>
#include <vector>

namespace radmm::core {

// What block i contributes at one iterate. Fields a layer does not own are 0.
struct layer_terms {
  double weight_sq = 0;    // ||W_i||^2
  double penalty_sq = 0;   // i < N: ||h(V_{i-1}) + sigma(W_i V_{i-1} or U_i) - V_i||^2
  double coupling_sq = 0;  // 3s, i < N: ||W_i V_{i-1} - U_i||^2;  i = N: ||W_N V_{N-1} - V_N||^2
  double dual_inner = 0;   // <Lambda_i, W_i V_{i-1} - U_i> (3s) or <Lambda_N, W_N V_{N-1} - V_N>
  double fit_sq = 0;       // i = N: ||V_N - Y||^2
  double pred_sq_train = 0;  // i = N: ||W_N F_{N-1} - Y||^2 on the train rows (plain forward pass)
  double pred_sq_test = 0;   // i = N: the same on the test rows
  static constexpr int fields = 7;
  void to_array(double* out) const;
  static layer_terms from_array(const double* in);
};

// One row of metrics.csv. Column meanings follow shared/reference/README.md:
//   J      = 1/2 ||pred - Y||^2 + lambda/2 sum ||W_i||^2 on the plain forward pass,
//   J_admm = the same with the ADMM variable V_N in place of pred,
//   L      = the augmented Lagrangian (7) or (17),
//   res_N  = ||W_N V_{N-1} - V_N||, res_U = sqrt(sum ||W_i V_{i-1} - U_i||^2) (3s),
//   res_pen = sqrt(sum ||h(V_{i-1}) + sigma(.) - V_i||^2),
//   mse_train/mse_test = ||pred - Y||_F^2 / n in the normalised units.
struct iteration_metrics {
  long iteration = 0;
  double J = 0, J_admm = 0, L = 0, res_N = 0, res_U = 0, res_pen = 0;
  double mse_train = 0, mse_test = 0;
  double tau1 = 0, nu1 = 0;
  double seconds = 0;  // wall time of the run so far (filled by the driver)
};

// Sums the layers in order 1..N. n_test = 0 leaves mse_test NaN.
iteration_metrics assemble_metrics(const std::vector<layer_terms>& terms, algorithm algo,
                                   double lambda, double mu, double beta, long n_train,
                                   long n_test);

std::string metrics_csv_header();
std::string metrics_csv_row(const iteration_metrics& m);
// Inverse of metrics_csv_row (exact: doubles are written with 17 digits).
// Throws std::invalid_argument on a malformed row.
iteration_metrics parse_metrics_csv_row(const std::string& row);

}  // namespace radmm::core
