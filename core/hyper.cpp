#include "core/hyper.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace radmm::core {

algorithm parse_algorithm(const std::string& s) {
  if (s == "2s" || s == "two-split" || s == "two_split") return algorithm::two_split;
  if (s == "3s" || s == "three-split" || s == "three_split") return algorithm::three_split;
  throw std::invalid_argument("unknown --algorithm '" + s + "' (expected 2s or 3s)");
}

variant parse_variant(const std::string& s) {
  if (s == "linearized" || s == "pl") return variant::linearized;
  if (s == "proximal" || s == "p") return variant::proximal;
  throw std::invalid_argument("unknown --variant '" + s + "' (expected linearized or proximal)");
}

std::string to_string(algorithm a) { return a == algorithm::two_split ? "2s" : "3s"; }
std::string to_string(variant v) { return v == variant::linearized ? "linearized" : "proximal"; }

namespace {

std::string fmt(double x) {
  std::ostringstream os;
  os.precision(17);
  os << x;
  return os.str();
}

void require(bool ok, const std::string& flag, double value, const char* rule) {
  if (!ok) throw std::invalid_argument(flag + " " + fmt(value) + " is invalid: " + rule);
}

}  // namespace

void hyper_params::validate() const {
  require(std::isfinite(beta) && beta > 0, "--beta", beta, "must be > 0");
  require(std::isfinite(mu) && mu > 0, "--mu", mu, "must be > 0");
  require(std::isfinite(lambda) && lambda >= 0, "--lambda", lambda, "must be >= 0");
  require(std::isfinite(tau) && tau > 0, "--tau", tau, "must be > 0");
  require(std::isfinite(nu) && nu > 0, "--nu", nu, "must be > 0");
  require(std::isfinite(ef_tau) && ef_tau >= 1, "--ef-tau", ef_tau, "must be >= 1");
  require(std::isfinite(ef_nu) && ef_nu >= 1, "--ef-nu", ef_nu, "must be >= 1");
  require(kappa > 0, "--kappa", kappa, "must be > 0");
  require(std::isfinite(inner_tol) && inner_tol > 0, "--inner-tol", inner_tol, "must be > 0");
  require(inner_max_iter >= 1, "--inner-max-iter", inner_max_iter, "must be >= 1");
}

std::vector<std::string> hyper_params::warnings(activation act) const {
  std::vector<std::string> w;
  if (algo == algorithm::two_split && beta <= 1)
    w.push_back("--beta " + fmt(beta) +
                " <= 1: outside Assumption 1 (beta > 1), the two-splitting convergence theory does not apply");
  if (algo == algorithm::three_split) {
    const activation_bounds b = bounds_of(act);
    // Assumption 2 needs beta_i >= 16 mu psi_1^2 at the very least (Appendix IX-A).
    const double floor = 16.0 * mu * b.psi1 * b.psi1;
    if (std::isfinite(floor) && beta < floor)
      w.push_back("--beta " + fmt(beta) + " < 16 mu psi_1^2 = " + fmt(floor) +
                  ": outside Assumption 2, the three-splitting convergence theory does not apply");
  }
  if (var == variant::linearized && act_is_piecewise_linear(act) == false && tau < 1e-8)
    w.push_back("--tau is tiny: the linearised steps may diverge");
  return w;
}

std::vector<std::string> preset_names() { return {"default", "paper", "oscillating"}; }

hyper_params preset(const std::string& name, algorithm algo, activation act, int layers,
                    int width) {
  hyper_params hp;
  hp.algo = algo;
  const double N = layers, d = width;
  const bool relu_like = act_is_piecewise_linear(act);
  if (name == "paper") {
    // Appendix IX-C, Section VII-A settings.
    hp.ef_tau = hp.ef_nu = 1.05;
    if (algo == algorithm::two_split) {
      if (relu_like) {
        hp.beta = 10;
        hp.mu = 1e-5 / (d * N);
        hp.lambda = 1e-5 * d * N;
        hp.tau = 10 * d * N;
        hp.nu = 10 * d;
      } else {
        hp.beta = 1e4;
        hp.mu = 0.1;
        hp.lambda = layers <= 10 ? 0.05 : (layers <= 30 ? 5.0 : 50.0);
        hp.tau = hp.nu = N;
      }
    } else {
      if (relu_like) {
        hp.beta = 100;
        hp.mu = 1;
      } else {
        hp.beta = 1000;
        hp.mu = 0.1;
      }
      hp.lambda = 1e-4;
      hp.tau = hp.nu = 10;
    }
    return hp;
  }
  if (name == "oscillating") {
    // Appendix IX-C, Section VII-B (two-splitting, proximal linearized).
    hp.beta = 100;
    hp.mu = 0.1;
    hp.tau = hp.nu = 1;
    hp.lambda = width < 5000 ? 0.005 : 0.001;
    return hp;
  }
  if (name == "default") {
    // radmm's defaults (README "Defaults"): chosen on Wine Quality and the
    // built-in data so that an untuned run fits well and deep ReLU nets stay stable.
    if (algo == algorithm::two_split) {
      hp.beta = 2;
      hp.mu = 1;
      hp.lambda = 1e-3;
      hp.tau = 1;
      hp.nu = 1;
      hp.ef_tau = hp.ef_nu = 1.0;
    } else {
      hp.beta = 20;
      hp.mu = 1;
      hp.lambda = 1e-3;
      hp.tau = 1;
      hp.nu = 1;
      hp.ef_tau = hp.ef_nu = 1.0;
    }
    return hp;
  }
  throw std::invalid_argument("unknown --preset '" + name + "' (expected default, paper or oscillating)");
}

}  // namespace radmm::core
