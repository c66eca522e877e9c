#include "core/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <vector>

namespace radmm::core {

void layer_terms::to_array(double* out) const {
  out[0] = weight_sq;
  out[1] = penalty_sq;
  out[2] = coupling_sq;
  out[3] = dual_inner;
  out[4] = fit_sq;
  out[5] = pred_sq_train;
  out[6] = pred_sq_test;
}

layer_terms layer_terms::from_array(const double* in) {
  layer_terms t;
  t.weight_sq = in[0];
  t.penalty_sq = in[1];
  t.coupling_sq = in[2];
  t.dual_inner = in[3];
  t.fit_sq = in[4];
  t.pred_sq_train = in[5];
  t.pred_sq_test = in[6];
  return t;
}

iteration_metrics assemble_metrics(const std::vector<layer_terms>& terms, algorithm algo,
                                   double lambda, double mu, double beta, long n_train,
                                   long n_test) {
  // terms[0] is unused (paper indexing); the last entry is layer N.
  const std::size_t N = terms.size() - 1;
  double weights = 0, penalty = 0, coupling_hidden = 0, dual_hidden = 0;
  for (std::size_t i = 1; i <= N; ++i) {
    weights += terms[i].weight_sq;
    if (i < N) {
      penalty += terms[i].penalty_sq;
      coupling_hidden += terms[i].coupling_sq;
      dual_hidden += terms[i].dual_inner;
    }
  }
  const layer_terms& last = terms[N];
  iteration_metrics m;
  const double ridge = 0.5 * lambda * weights;
  m.J = 0.5 * last.pred_sq_train + ridge;
  m.J_admm = 0.5 * last.fit_sq + ridge;
  m.L = m.J_admm + 0.5 * mu * penalty + last.dual_inner + 0.5 * beta * last.coupling_sq;
  if (algo == algorithm::three_split) m.L += dual_hidden + 0.5 * beta * coupling_hidden;
  m.res_N = std::sqrt(last.coupling_sq);
  m.res_U = algo == algorithm::three_split ? std::sqrt(coupling_hidden)
                                           : std::numeric_limits<double>::quiet_NaN();
  m.res_pen = std::sqrt(penalty);
  m.mse_train = last.pred_sq_train / static_cast<double>(n_train);
  m.mse_test = n_test > 0 ? last.pred_sq_test / static_cast<double>(n_test)
                          : std::numeric_limits<double>::quiet_NaN();
  return m;
}

std::string metrics_csv_header() {
  return "k,J,J_admm,L,res_N,res_U,res_pen,mse_train,mse_test,tau1,nu1,seconds";
}

std::string metrics_csv_row(const iteration_metrics& m) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%ld,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.6f",
                m.iteration, m.J, m.J_admm, m.L, m.res_N, m.res_U, m.res_pen, m.mse_train,
                m.mse_test, m.tau1, m.nu1, m.seconds);
  return buf;
}

iteration_metrics parse_metrics_csv_row(const std::string& row) {
  std::vector<double> v;
  std::size_t pos = 0;
  while (pos <= row.size()) {
    const std::size_t comma = row.find(',', pos);
    const std::string field = row.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    const double x = std::strtod(field.c_str(), &end);
    if (field.empty() || *end != '\0') throw std::invalid_argument("bad metrics field '" + field + "'");
    v.push_back(x);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (v.size() != 12) throw std::invalid_argument("a metrics row has 12 fields, got " + std::to_string(v.size()));
  iteration_metrics m;
  m.iteration = static_cast<long>(v[0]);
  m.J = v[1];
  m.J_admm = v[2];
  m.L = v[3];
  m.res_N = v[4];
  m.res_U = v[5];
  m.res_pen = v[6];
  m.mse_train = v[7];
  m.mse_test = v[8];
  m.tau1 = v[9];
  m.nu1 = v[10];
  m.seconds = v[11];
  return m;
}

}  // namespace radmm::core
