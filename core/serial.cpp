#include "core/serial.hpp"

#include "core/rng.hpp"
#include "core/updates.hpp"

#include <stdexcept>
#include <utility>

namespace radmm::core {

layer_terms initial_hidden_terms(activation act, algorithm algo, const_mat_ref W,
                                 const_mat_ref V_prev, const_mat_ref V, const_mat_ref U,
                                 const_mat_ref Lambda) {
  layer_terms t;
  t.weight_sq = sq_norm(W);
  const mat pre = mul(W, V_prev);
  if (algo == algorithm::two_split) {
    t.penalty_sq = sq_dist(block_target(act, V_prev, pre), V);
  } else {
    t.penalty_sq = sq_dist(block_target_3s(act, V_prev, U), V);
    const mat gap = pre - U;
    t.coupling_sq = sq_norm(gap);
    t.dual_inner = frobenius_dot(Lambda, gap);
  }
  return t;
}

layer_terms initial_last_terms(const_mat_ref W_N, const_mat_ref V_prev, const_mat_ref V_N,
                               const_mat_ref Lambda_N, const_mat_ref Y) {
  return last_terms(W_N, mul(W_N, V_prev), V_N, Lambda_N, Y);
}

layer_terms hidden_terms_2s(const_mat_ref W, const_mat_ref A, const_mat_ref V) {
  layer_terms t;
  t.weight_sq = sq_norm(W);
  t.penalty_sq = sq_dist(A, V);
  return t;
}

layer_terms hidden_terms_3s(activation act, const_mat_ref W, const_mat_ref V_prev,
                            const_mat_ref pre, const_mat_ref U, const_mat_ref V,
                            const_mat_ref Lambda) {
  layer_terms t;
  t.weight_sq = sq_norm(W);
  t.penalty_sq = sq_dist(block_target_3s(act, V_prev, U), V);
  const mat gap = pre - U;
  t.coupling_sq = sq_norm(gap);
  t.dual_inner = frobenius_dot(Lambda, gap);
  return t;
}

layer_terms last_terms(const_mat_ref W_N, const_mat_ref WV, const_mat_ref V_N,
                       const_mat_ref Lambda_N, const_mat_ref Y) {
  layer_terms t;
  const mat gap = WV - V_N;
  t.weight_sq = sq_norm(W_N);
  t.coupling_sq = sq_norm(gap);
  t.dual_inner = frobenius_dot(Lambda_N, gap);
  t.fit_sq = sq_dist(V_N, Y);
  return t;
}

double forward_output_sq(const_mat_ref W_N, const_mat_ref F, const_mat_ref Y) {
  return sq_dist(mul(W_N, F), Y);
}

void init_block_variables(const architecture& arch, algorithm algo, admm_state& s,
                          const_mat_ref X, const_mat_ref Y) {
  const int N = arch.layers;
  if (X.rows() != arch.input_dim)
    throw std::invalid_argument("batch has " + std::to_string(X.rows()) + " features, model expects " +
                                std::to_string(arch.input_dim));
  if (Y.rows() != arch.output_dim || Y.cols() != X.cols())
    throw std::invalid_argument("targets are " + std::to_string(Y.rows()) + "x" +
                                std::to_string(Y.cols()) + ", expected " +
                                std::to_string(arch.output_dim) + "x" + std::to_string(X.cols()));
  s.V.assign(static_cast<std::size_t>(N) + 1, mat());
  s.pre.assign(static_cast<std::size_t>(N) + 1, mat());
  s.U.assign(static_cast<std::size_t>(N) + 1, mat());
  s.Lambda.assign(static_cast<std::size_t>(N) + 1, mat());
  s.V[0] = X;
  s.Y = Y;
  for (int i = 1; i < N; ++i) {
    s.V[i] = block_forward(arch.act, s.W[i], s.V[i - 1], &s.pre[i]);
    if (algo == algorithm::three_split) {
      s.U[i] = s.pre[i];
      s.Lambda[i] = mat::Zero(s.U[i].rows(), s.U[i].cols());
    }
  }
  s.V[N] = mul(s.W[N], s.V[N - 1]);
  s.Lambda[N] = mat::Zero(s.V[N].rows(), s.V[N].cols());
}

std::vector<layer_terms> admm_terms(const architecture& arch, algorithm algo, const admm_state& s) {
  const int N = arch.layers;
  std::vector<layer_terms> t(static_cast<std::size_t>(N) + 1);
  for (int i = 1; i < N; ++i) {
    t[i] = initial_hidden_terms(arch.act, algo, s.W[i], s.V[i - 1], s.V[i], s.U[i], s.Lambda[i]);
  }
  t[N] = initial_last_terms(s.W[N], s.V[N - 1], s.V[N], s.Lambda[N], s.Y);
  return t;
}

void add_forward_terms(const architecture& arch, const weight_set& W, const_mat_ref X,
                       const_mat_ref Y, bool test_rows, std::vector<layer_terms>& terms) {
  const int N = arch.layers;
  mat F = block_forward(arch.act, W[1], X);
  for (int i = 2; i < N; ++i) F = block_forward(arch.act, W[i], F);
  (test_rows ? terms[N].pred_sq_test : terms[N].pred_sq_train) = forward_output_sq(W[N], F, Y);
}

serial_engine::serial_engine(architecture arch, hyper_params hp, weight_set W0)
    : arch_(std::move(arch)), hp_(std::move(hp)) {
  arch_.validate();
  hp_.validate();
  check_shapes(arch_, W0);
  s_.W = std::move(W0);
  s_.tau.assign(static_cast<std::size_t>(arch_.layers), hp_.tau);
  s_.nu.assign(static_cast<std::size_t>(arch_.layers), hp_.nu);
}

void serial_engine::set_batch(const_mat_ref X, const_mat_ref Y) {
  init_block_variables(arch_, hp_.algo, s_, X, Y);
}

std::vector<block_state> serial_engine::save_blocks() const {
  const int N = arch_.layers;
  std::vector<block_state> b(static_cast<std::size_t>(N) + 1);
  for (int i = 1; i <= N; ++i) {
    block_state& x = b[static_cast<std::size_t>(i)];
    x.layer = i;
    x.iteration = s_.iteration;
    x.tau = i < N ? s_.tau[i] : 0.0;  // layer N has no proximal step
    x.nu = i < N ? s_.nu[i] : 0.0;
    x.W = s_.W[i];
    x.V = s_.V[i];
    x.U = s_.U[i];
    x.Lambda = s_.Lambda[i];
    x.pre = s_.pre[i];
    if (i > 1) x.V_prev = s_.V[i - 1];
  }
  return b;
}

void serial_engine::restore_blocks(const std::vector<block_state>& b, const_mat_ref X, const_mat_ref Y,
                                   bool full_state) {
  const int N = arch_.layers;
  if (static_cast<int>(b.size()) != N + 1) throw std::invalid_argument("checkpoint has the wrong number of layers");
  weight_set W(static_cast<std::size_t>(N) + 1);
  for (int i = 1; i <= N; ++i) W[i] = b[static_cast<std::size_t>(i)].W;
  check_shapes(arch_, W);
  s_.W = std::move(W);
  s_.V.assign(static_cast<std::size_t>(N) + 1, mat());
  s_.U.assign(static_cast<std::size_t>(N) + 1, mat());
  s_.Lambda.assign(static_cast<std::size_t>(N) + 1, mat());
  s_.pre.assign(static_cast<std::size_t>(N) + 1, mat());
  s_.V[0] = X;
  s_.Y = Y;
  for (int i = 1; i <= N; ++i) {
    const block_state& x = b[static_cast<std::size_t>(i)];
    if (x.layer != i || x.iteration != b[1].iteration)
      throw std::invalid_argument("checkpoint block " + std::to_string(i) + " belongs to layer " +
                                  std::to_string(x.layer) + " at iteration " + std::to_string(x.iteration));
    if (full_state) {
      if (x.V.cols() != X.cols())
        throw std::invalid_argument("checkpoint V_" + std::to_string(i) + " does not match the batch");
      s_.V[i] = x.V;
      s_.U[i] = x.U;
      s_.Lambda[i] = x.Lambda;
      s_.pre[i] = x.pre;
    }
    if (i < N) {
      s_.tau[i] = x.tau;
      s_.nu[i] = x.nu;
    }
  }
  s_.iteration = b[1].iteration;
}

void serial_engine::expand_step_sizes() {
  for (int i = 1; i < arch_.layers; ++i) {
    s_.tau[i] *= hp_.ef_tau;
    s_.nu[i] *= hp_.ef_nu;
  }
}

void serial_engine::iterate(std::vector<layer_terms>* terms) {
  if (s_.V.empty()) throw std::logic_error("serial_engine::iterate before set_batch");
  if (terms) terms->assign(static_cast<std::size_t>(arch_.layers) + 1, layer_terms{});
  if (hp_.algo == algorithm::two_split)
    iterate_2s(terms);
  else
    iterate_3s(terms);
  // Divergence is reported by block and layer, in layer order, so a serial and
  // a parallel run name the same culprit.
  const long k = s_.iteration + 1;
  for (int i = 1; i <= arch_.layers; ++i) {
    check_finite(s_.W[i], "W", i, k);
    if (hp_.algo == algorithm::three_split && i < arch_.layers) check_finite(s_.U[i], "U", i, k);
    check_finite(s_.V[i], "V", i, k);
  }
  expand_step_sizes();
  ++s_.iteration;
}

// Algorithm 1. Every W update reads V^k; the V sweep runs i = 1 .. N-1 with
// V_{i-1}^{k+1} and W^{k+1}, exactly the dependencies of Algorithm 3.
void serial_engine::iterate_2s(std::vector<layer_terms>* terms) {
  const int N = arch_.layers;
  const activation act = arch_.act;
  auto& W = s_.W;
  auto& V = s_.V;
  auto& pre = s_.pre;
  mat& Lambda = s_.Lambda[N];
  const double mu = hp_.mu, beta = hp_.beta, lambda = hp_.lambda;
  const bool linearized = hp_.var == variant::linearized;

  W[N] = update_W_ridge(V[N], Lambda, V[N - 1], beta, lambda);  // (8)
  for (int i = N - 1; i >= 1; --i) {
    W[i] = linearized
               ? update_W_hidden_linearized(act, W[i], V[i - 1], V[i], pre[i], mu, lambda, s_.tau[i])  // (10)
               : update_W_hidden_proximal(act, W[i], V[i - 1], V[i], mu, lambda, s_.tau[i], hp_.kappa,
                                          hp_.inner_tol, hp_.inner_max_iter);  // (9)
  }
  for (int i = 1; i < N; ++i) {
    pre[i] = mul(W[i], V[i - 1]);
    const mat A = block_target(act, V[i - 1], pre[i]);
    if (i < N - 1) {
      V[i] = linearized ? update_V_hidden_linearized(act, V[i], A, W[i + 1], V[i + 1], mu, s_.nu[i])  // (12)
                        : update_V_hidden_proximal(act, V[i], A, W[i + 1], V[i + 1], mu, s_.nu[i],
                                                   hp_.inner_tol, hp_.inner_max_iter);  // (11)
    } else {
      V[i] = update_V_penultimate(A, W[N], V[N], Lambda, mu, beta);  // (13)
    }
    if (terms) (*terms)[i] = hidden_terms_2s(W[i], A, V[i]);
  }
  const mat WV = mul(W[N], V[N - 1]);
  V[N] = update_V_last(s_.Y, WV, Lambda, beta);  // (14)
  update_dual(Lambda, WV, V[N], beta);           // (15)
  if (terms) (*terms)[N] = last_terms(W[N], WV, V[N], Lambda, s_.Y);
}

// Algorithm 2. W updates read U^k, V^k, Lambda^k; then for i = 1 .. N-1 the
// U_i update (V_{i-1}^{k+1}) and the V_i update (U_{i+1}^k, V_{i+1}^k,
// Lambda_{i+1}^k); the multipliers move last.
void serial_engine::iterate_3s(std::vector<layer_terms>* terms) {
  const int N = arch_.layers;
  const activation act = arch_.act;
  auto& W = s_.W;
  auto& V = s_.V;
  auto& U = s_.U;
  auto& L = s_.Lambda;
  auto& pre = s_.pre;
  const double mu = hp_.mu, beta = hp_.beta, lambda = hp_.lambda;
  const bool linearized = hp_.var == variant::linearized;

  W[N] = update_W_ridge(V[N], L[N], V[N - 1], beta, lambda);  // (18)
  for (int i = N - 1; i >= 1; --i) W[i] = update_W_ridge(U[i], L[i], V[i - 1], beta, lambda);  // (19)
  for (int i = 1; i < N; ++i) {
    pre[i] = mul(W[i], V[i - 1]);
    U[i] = linearized
               ? update_U_linearized(act, U[i], V[i - 1], V[i], pre[i], L[i], mu, beta, s_.tau[i])  // (21)
               : update_U_proximal(act, U[i], V[i - 1], V[i], pre[i], L[i], mu, beta, s_.tau[i]);  // (20)
    if (i < N - 1) {
      V[i] = update_V_hidden_3s(act, V[i - 1], U[i], V[i + 1], U[i + 1], W[i + 1], L[i + 1], mu, beta);  // (22)
    } else {
      const mat A = block_target_3s(act, V[i - 1], U[i]);
      V[i] = update_V_penultimate(A, W[N], V[N], L[N], mu, beta);  // (23)
    }
  }
  const mat WV = mul(W[N], V[N - 1]);
  V[N] = update_V_last(s_.Y, WV, L[N], beta);  // (24)
  for (int i = 1; i < N; ++i) update_dual(L[i], pre[i], U[i], beta);  // (25)
  update_dual(L[N], WV, V[N], beta);                                   // (26)
  if (terms) {
    for (int i = 1; i < N; ++i)
      (*terms)[i] = hidden_terms_3s(act, W[i], V[i - 1], pre[i], U[i], V[i], L[i]);
    (*terms)[N] = last_terms(W[N], WV, V[N], L[N], s_.Y);
  }
}

std::vector<std::vector<std::int64_t>> epoch_batches(std::int64_t n, std::int64_t batch_size,
                                                     std::uint64_t seed, long epoch) {
  std::vector<std::vector<std::int64_t>> batches;
  if (batch_size <= 0 || batch_size >= n) {
    std::vector<std::int64_t> all(static_cast<std::size_t>(n));
    for (std::int64_t j = 0; j < n; ++j) all[static_cast<std::size_t>(j)] = j;
    batches.push_back(std::move(all));
    return batches;
  }
  // A distinct stream per epoch, independent of how many epochs came before.
  rng gen(seed ^ (0x5851f42d4c957f2dULL * (static_cast<std::uint64_t>(epoch) + 1)));
  const std::vector<std::int64_t> perm = gen.permutation(n);
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const std::int64_t end = std::min(n, start + batch_size);
    batches.emplace_back(perm.begin() + start, perm.begin() + end);
  }
  return batches;
}

}  // namespace radmm::core
