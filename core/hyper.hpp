#pragma once
// Hyper-parameters of the RADMM updates (Tables I and II) and their presets.
#include "core/activation.hpp"

#include <limits>
#include <string>
#include <vector>

namespace radmm::core {

enum class algorithm { two_split, three_split };  // Algorithm 1/3, Algorithm 2/4
enum class variant { linearized, proximal };      // "PL" and "P" rows of Tables I, II

algorithm parse_algorithm(const std::string& s);  // "2s" | "3s"
variant parse_variant(const std::string& s);      // "linearized" | "proximal"
std::string to_string(algorithm a);
std::string to_string(variant v);

struct hyper_params {
  algorithm algo = algorithm::two_split;
  variant var = variant::linearized;
  double beta = 1.0;    // penalty on W_N V_{N-1} = V_N (and, 3s, on U_i = W_i V_{i-1})
  double mu = 1.0;      // weight of the residual-block penalty in (6)/(16)
  double lambda = 0.0;  // ridge weight on every W_i
  // Proximal step-sizes at iteration 0, one per layer 1..N-1 (index 0 unused):
  //  2s: tau_i for the W_i update (10) (omega_i in (9)), nu_i for the V_i update
  //      (12)/(11) (iota in Appendix IX-C);
  //  3s: tau_i for the U_i update (21) (omega_i in (20)); nu is unused.
  double tau = 1.0;
  double nu = 1.0;
  // Expansion factors: iteration k uses tau * ef_tau^k (Appendix IX-C), formed by
  // repeated multiplication after each iteration.
  double ef_tau = 1.0;
  double ef_nu = 1.0;
  // Radius of the ball constraint ||W_i|| <= kappa in (9) (infinite: no constraint).
  double kappa = std::numeric_limits<double>::infinity();
  // Inner solver of the proximal (non-linearized) subproblems (9), (11), (20).
  double inner_tol = 1e-10;  // on the relative norm of the (projected) gradient step
  int inner_max_iter = 200;

  // Throws std::invalid_argument naming the flag: beta <= 0, mu <= 0, lambda < 0,
  // tau/nu <= 0, ef < 1, ...
  void validate() const;
  // Human-readable warnings for values outside the convergence assumptions
  // (Assumption 1: beta > 1 for two-splitting; Assumption 2: beta_i large).
  std::vector<std::string> warnings(activation act) const;
};

// Named settings. "paper" = Appendix IX-C for the activation, depth and width;
// "default" = radmm's own defaults that train without tuning (see README).
hyper_params preset(const std::string& name, algorithm algo, activation act, int layers,
                    int width);
std::vector<std::string> preset_names();

}  // namespace radmm::core
