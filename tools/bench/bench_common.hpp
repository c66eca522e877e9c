#pragma once
// Shared pieces of the benchmark programs (radmm-bench-serial,
// radmm-bench-parallel): flags, clocks and medians, a plain table printer, the
// synthetic problem both programs time, and the analytic floating-point
// operation count of one RADMM iteration (docs/benchmarks.md says which terms
// it counts). Numbers, not tests: nothing here asserts a result.
#include "core/hyper.hpp"
#include "core/model.hpp"
#include "core/rng.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace radmm::bench {

// ---- flags -----------------------------------------------------------------

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "--key value" and bare "--switch" arguments; every key must be consumed.
class flags {
 public:
  flags(int argc, char** argv, const std::vector<std::string>& switches) {
    for (int a = 1; a < argc; ++a) {
      std::string k = argv[a];
      if (k.rfind("--", 0) != 0) throw usage_error("unexpected argument '" + k + "'");
      k = k.substr(2);
      if (std::find(switches.begin(), switches.end(), k) != switches.end()) {
        values_[k] = "1";
        continue;
      }
      if (a + 1 >= argc) throw usage_error("--" + k + " needs a value");
      values_[k] = argv[++a];
    }
  }
  bool has(const std::string& k) const { return values_.count(k) != 0; }
  std::string str(const std::string& k, const std::string& def) {
    used_.push_back(k);
    auto it = values_.find(k);
    return it == values_.end() ? def : it->second;
  }
  bool on(const std::string& k) {
    used_.push_back(k);
    return has(k);
  }
  long integer(const std::string& k, long def) {
    const std::string v = str(k, std::to_string(def));
    char* end = nullptr;
    const long x = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0') throw usage_error("--" + k + " needs an integer, got '" + v + "'");
    return x;
  }
  double real(const std::string& k, double def) {
    std::ostringstream os;
    os << def;
    const std::string v = str(k, os.str());
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') throw usage_error("--" + k + " needs a number, got '" + v + "'");
    return x;
  }
  std::vector<std::string> list(const std::string& k, const std::string& def) {
    std::vector<std::string> out;
    std::stringstream ss(str(k, def));
    for (std::string item; std::getline(ss, item, ',');)
      if (!item.empty()) out.push_back(item);
    return out;
  }
  std::vector<long> integers(const std::string& k, const std::string& def) {
    std::vector<long> out;
    for (const std::string& s : list(k, def)) {
      char* end = nullptr;
      const long x = std::strtol(s.c_str(), &end, 10);
      if (*end != '\0') throw usage_error("--" + k + ": '" + s + "' is not an integer");
      out.push_back(x);
    }
    return out;
  }
  // Throws naming the first flag nobody asked for (a typo must not be ignored).
  void check_all_used() const {
    for (const auto& kv : values_)
      if (std::find(used_.begin(), used_.end(), kv.first) == used_.end())
        throw usage_error("unknown flag --" + kv.first);
  }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> used_;
};

// "1024x1024" -> {1024, 1024}.
struct shape {
  long d = 0, n = 0;
};
inline shape parse_shape(const std::string& s) {
  const auto x = s.find('x');
  if (x == std::string::npos) throw usage_error("shape '" + s + "' is not DxN");
  shape out{std::strtol(s.substr(0, x).c_str(), nullptr, 10), std::strtol(s.substr(x + 1).c_str(), nullptr, 10)};
  if (out.d < 1 || out.n < 1) throw usage_error("shape '" + s + "' is not DxN with D, N >= 1");
  return out;
}

// ---- clocks and statistics --------------------------------------------------

using clock_type = std::chrono::steady_clock;
inline double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}
inline double minimum(const std::vector<double>& v) {
  return v.empty() ? std::nan("") : *std::min_element(v.begin(), v.end());
}

inline int hardware_threads() {
  const unsigned h = std::thread::hardware_concurrency();
  return h == 0 ? 1 : static_cast<int>(h);
}

inline std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", std::localtime(&t));
  return buf;
}

// ---- formatting ------------------------------------------------------------

inline std::string fixed(double x, int digits) {
  if (!std::isfinite(x)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}
// Seconds with a unit that keeps three significant digits readable.
inline std::string duration(double s) {
  if (!std::isfinite(s)) return "-";
  char buf[64];
  if (s >= 1) std::snprintf(buf, sizeof buf, "%.3f s", s);
  else if (s >= 1e-3) std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
  else std::snprintf(buf, sizeof buf, "%.1f us", s * 1e6);
  return buf;
}

// A table printed as aligned columns (and as Markdown with --markdown).
class table {
 public:
  explicit table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& os, bool markdown) const {
    std::vector<std::size_t> w(header_.size(), 0);
    auto widen = [&](const std::vector<std::string>& r) {
      for (std::size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], r[c].size());
    };
    widen(header_);
    for (const auto& r : rows_) widen(r);
    auto line = [&](const std::vector<std::string>& r) {
      if (markdown) os << "| ";
      for (std::size_t c = 0; c < w.size(); ++c) {
        const std::string cell = c < r.size() ? r[c] : "";
        os << cell << std::string(w[c] - cell.size(), ' ') << (markdown ? " | " : "  ");
      }
      os << "\n";
    };
    line(header_);
    if (markdown) {
      os << "|";
      for (std::size_t c = 0; c < w.size(); ++c) os << std::string(w[c] + 2, '-') << "|";
      os << "\n";
    }
    for (const auto& r : rows_) line(r);
    os.flush();
  }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// ---- the synthetic problem ---------------------------------------------------

// N layers of width d on n samples with one output (q = 1), inputs of width d
// (so h_1 is the identity, as in the paper). X and Y uniform in [0, 1] (the
// range min-max scaling gives), Kaiming weights; all from `seed`.
struct synthetic {
  core::architecture arch;
  core::hyper_params hp;
  core::weight_set W0;
  core::mat X, Y;
};

// radmm's default step-sizes, as `radmm train` resolves them (coordinator/cli.cpp,
// default_step_sizes): the majorisation bounds of (10) and (12) at the
// initial point, so the timed iterations stay finite.
inline void default_step_sizes(synthetic& p) {
  const core::activation_bounds b = core::bounds_of(p.arch.act);
  const double psi1 = b.psi1;
  const std::vector<core::mat> V = core::forward_all(p.arch, p.W0, p.X);
  double tau = 0, nu = 0;
  for (int i = 1; i < p.arch.layers; ++i) {
    tau = std::max(tau, p.hp.mu * psi1 * psi1 * V[static_cast<std::size_t>(i - 1)].squaredNorm());
    const double w = p.W0[static_cast<std::size_t>(i + 1)].norm();
    nu = std::max(nu, p.hp.mu * (1 + psi1 * w) * (1 + psi1 * w));
  }
  p.hp.tau = tau;
  p.hp.nu = nu;
  p.hp.ef_tau = p.hp.ef_nu = 1.01;
}

inline synthetic make_problem(int layers, long d, long n, core::activation act, core::algorithm algo,
                              core::variant var, std::uint64_t seed) {
  synthetic p;
  p.arch.layers = layers;
  p.arch.input_dim = static_cast<int>(d);
  p.arch.width = static_cast<int>(d);
  p.arch.output_dim = 1;
  p.arch.act = act;
  p.arch.validate();
  p.hp = core::preset("default", algo, act, layers, static_cast<int>(d));
  p.hp.var = var;
  p.W0 = core::kaiming_normal(p.arch, seed);
  core::rng gen(seed + 1);
  p.X.resize(d, n);
  for (Eigen::Index j = 0; j < p.X.cols(); ++j)
    for (Eigen::Index i = 0; i < p.X.rows(); ++i) p.X(i, j) = gen.uniform();
  p.Y.resize(1, n);
  for (Eigen::Index j = 0; j < p.Y.cols(); ++j) p.Y(0, j) = gen.uniform();
  default_step_sizes(p);
  p.hp.validate();
  return p;
}

// ---- floating-point operation count -----------------------------------------
//
// Counted per call, following core/updates.cpp and core/linalg.cpp exactly:
//   product (m x k)(k x n)              2 m k n        ("gemm")
//   rank-k update, m x m from m x k     m^2 k          ("syrk", one triangle)
//   Cholesky of m x m                   m^3 / 3        ("chol")
//   two triangular solves, r columns    2 m^2 r        ("trsm")
// Element-wise work (activations, derivatives, scaling, residuals, norms: O(d n)
// per update) is not counted; it is time spent outside these kernels.
struct flops {
  double gemm = 0, syrk = 0, chol = 0, trsm = 0;
  double total() const { return gemm + syrk + chol + trsm; }
  flops& operator+=(const flops& o) {
    gemm += o.gemm, syrk += o.syrk, chol += o.chol, trsm += o.trsm;
    return *this;
  }
};

inline flops product(double m, double k, double n) {
  flops f;
  f.gemm = 2 * m * k * n;
  return f;
}

// core::ridge_right_solve(B r x n, V c x n): W = B V^T (lambda I + beta V V^T)^{-1}.
inline flops ridge_flops(double r, double c, double n) {
  flops f;
  if (n < c) {  // push-through: an n x n system
    f.syrk = n * n * c;
    f.chol = n * n * n / 3;
    f.trsm = 2 * n * n * r;
    f.gemm = 2 * r * n * c;  // S^T V^T
  } else {
    f.syrk = c * c * n;
    f.gemm = 2 * c * n * r;  // V B^T
    f.chol = c * c * c / 3;
    f.trsm = 2 * c * c * r;
  }
  return f;
}

// core::gram_shift_solve(W q x d, R d x n): (mu I + beta W^T W)^{-1} R.
inline flops gram_shift_flops(double q, double d, double n) {
  flops f;
  if (q < d) {  // Woodbury: a q x q system
    f.syrk = q * q * d;
    f.gemm = 2 * q * d * n + 2 * d * q * n;  // W R, W^T T
    f.chol = q * q * q / 3;
    f.trsm = 2 * q * q * n;
  } else {
    f.syrk = d * d * q;
    f.chol = d * d * d / 3;
    f.trsm = 2 * d * d * n;
  }
  return f;
}

// Per-layer flops of one proximal-linearized iteration (Algorithm 1 or 2 as
// core::serial_engine runs it; the layer machines of Algorithms 3, 4 do the
// same work per layer). w[i]: layer i's W update; p[i]: W_i V_{i-1} (and the
// element-wise U_i, Lambda_i of 3s), done once TICK from layer i-1 arrives;
// x[i]: the V_i update, done once TOCK from layer i+1 arrives (layer N:
// W_N V_{N-1} and V_N, Lambda_N).
struct layer_flops {
  std::vector<flops> w, p, x;  // index 1..N
  flops total() const {
    flops f;
    for (const auto* part : {&w, &p, &x})
      for (const auto& e : *part) f += e;
    return f;
  }
};

inline layer_flops iteration_flops(const core::architecture& arch, core::algorithm algo, long n_samples) {
  const int N = arch.layers;
  const double n = static_cast<double>(n_samples);
  const double d = arch.width, q = arch.output_dim;
  layer_flops lf;
  for (auto* part : {&lf.w, &lf.p, &lf.x}) part->assign(static_cast<std::size_t>(N) + 1, flops{});
  lf.w[static_cast<std::size_t>(N)] = ridge_flops(q, d, n);  // (8), (18)
  for (int i = 1; i < N; ++i) {
    const double c = static_cast<double>(arch.cols_of(i));
    const auto I = static_cast<std::size_t>(i);
    if (algo == core::algorithm::two_split)
      lf.w[I] = product(d, n, c);  // (10): D V_{i-1}^T
    else
      lf.w[I] = ridge_flops(d, c, n);  // (19)
    lf.p[I] = product(d, c, n);  // W_i V_{i-1}
    if (i < N - 1) {
      if (algo == core::algorithm::two_split) {
        lf.x[I] += product(d, d, n);  // (12): W_{i+1} V_i^k
        lf.x[I] += product(d, d, n);  // (12): W_{i+1}^T D
      } else {
        lf.x[I] += product(d, d, n);  // (22): W_{i+1}^T (beta U_{i+1} - Lambda_{i+1})
        lf.x[I] += gram_shift_flops(d, d, n);
      }
    } else {
      lf.x[I] += product(d, q, n);  // (13), (23): W_N^T (beta V_N - Lambda_N)
      lf.x[I] += gram_shift_flops(q, d, n);
    }
  }
  lf.x[static_cast<std::size_t>(N)] = product(q, d, n);  // W_N V_{N-1} for (14), (15)
  return lf;
}

// The steady-state period of the parallel regional update with one processor
// per layer, in the units of `lf` (flops at a common rate), from the
// dependencies of worker/layer_machine.hpp: layer i runs W_i^{k+1} after its
// V_i^k; then p_i after TICK(k+1) (V_{i-1}^{k+1}); then x_i after TOCK(k+1)
// (W_{i+1}^{k+1}). Simulated as a max-plus recurrence until the period settles.
inline double pipeline_period(const layer_flops& lf) {
  const std::size_t N = lf.w.size() - 1;
  std::vector<double> x_end(N + 1, 0.0), w_end(N + 2, 0.0);
  const int iterations = 200;
  double at_half = 0;
  for (int k = 0; k < iterations; ++k) {
    for (std::size_t i = 1; i <= N; ++i) w_end[i] = x_end[i] + lf.w[i].total();
    for (std::size_t i = 1; i <= N; ++i) {
      const double tick = i > 1 ? x_end[i - 1] : 0.0;  // x_end[i-1] already holds iteration k+1
      const double p_end = std::max(w_end[i], tick) + lf.p[i].total();
      const double tock = i < N ? w_end[i + 1] : 0.0;
      x_end[i] = std::max(p_end, tock) + lf.x[i].total();
    }
    if (k + 1 == iterations / 2) at_half = x_end[N];
  }
  return (x_end[N] - at_half) / (iterations - iterations / 2);
}

// The programs' main: runs `run`, mapping a usage error to exit 2 (with the
// usage text) and any other failure to exit 1, each named by the program.
inline int bench_main(const char* program, const char* usage, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << program << ": " << e.what() << "\n" << usage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace radmm::bench
