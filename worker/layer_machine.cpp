#include "worker/layer_machine.hpp"

#include "core/data.hpp"
#include "core/serial.hpp"
#include "core/updates.hpp"
#include "protocol/transport.hpp"

#include <string>

namespace radmm::worker {

using core::mat;
using protocol::matrix_view;
using protocol::message;
using protocol::msg_type;
using protocol::payload_kind;
using protocol::protocol_error;

namespace {

std::string who(protocol::node_id i) { return "layer " + std::to_string(i); }

const matrix_view& need(const message& m, payload_kind kind, const std::string& ctx) {
  const protocol::payload* p = m.find(kind);
  if (!p || p->matrix.empty())
    throw protocol_error(ctx + ": " + protocol::to_string(m.type) + " lacks payload " +
                         protocol::to_string(kind));
  return p->matrix;
}

void check_shape(const matrix_view& v, Eigen::Index rows, Eigen::Index cols, const std::string& what) {
  if (v.rows() != rows || v.cols() != cols)
    throw protocol_error(what + " is " + std::to_string(v.rows()) + "x" + std::to_string(v.cols()) +
                         ", expected " + std::to_string(rows) + "x" + std::to_string(cols));
}

std::shared_ptr<const mat> share(mat&& m) { return std::make_shared<const mat>(std::move(m)); }

}  // namespace

layer_machine::layer_machine(protocol::node_id self) : self_(self) {
  if (self < 1) throw std::invalid_argument("layer_machine: layer id must be >= 1");
}

message layer_machine::make(msg_type type, protocol::node_id to) const {
  message m;
  m.type = type;
  m.sender = self_;
  m.receiver = to;
  m.batch = step_batch_;
  return m;
}

std::size_t layer_machine::block_bytes() const {
  std::size_t bytes = 0;
  for (const auto& p : {W_, V_, U_, Lambda_})
    if (p) bytes += static_cast<std::size_t>(p->size()) * sizeof(double);
  bytes += static_cast<std::size_t>(pre_.size() + A_.size() + Y_batch_.size()) * sizeof(double);
  return bytes;
}

std::vector<message> layer_machine::handle(const message& m) {
  std::vector<message> out;
  if (m.version != protocol::protocol_version)
    throw protocol_error(who(self_) + ": message of protocol version " + std::to_string(m.version) +
                         ", expected " + std::to_string(protocol::protocol_version));
  if (m.receiver != self_)
    throw protocol_error(who(self_) + ": received a message addressed to node " + std::to_string(m.receiver));
  if (phase_ == phase::done) throw protocol_error(who(self_) + ": message after QUIT");
  switch (m.type) {
    case msg_type::init:
      if (m.sender != protocol::coordinator_id || initialised_)
        throw protocol_error(who(self_) + ": unexpected INIT from node " + std::to_string(m.sender));
      on_init(m, out);
      return out;
    case msg_type::step:
      if (m.sender != protocol::coordinator_id) throw protocol_error(who(self_) + ": STEP not from the coordinator");
      if (!initialised_) throw protocol_error(who(self_) + ": STEP before INIT");
      if (phase_ != phase::idle)
        throw protocol_error(who(self_) + ": STEP " + std::to_string(m.batch) + " while STEP " +
                             std::to_string(step_batch_) + " is in progress");
      on_step(m);
      break;
    case msg_type::tick:
      if (m.sender != self_ - 1)
        throw protocol_error(who(self_) + ": TICK from node " + std::to_string(m.sender) + ", only layer " +
                             std::to_string(self_ - 1) + " sends TICKs here");
      pending_.push_back(m);
      break;
    case msg_type::tock:
      if (m.sender != self_ + 1 || (initialised_ && self_ == N_))
        throw protocol_error(who(self_) + ": TOCK from node " + std::to_string(m.sender) + ", only layer " +
                             std::to_string(self_ + 1) + " sends TOCKs here");
      pending_.push_back(m);
      break;
    case msg_type::quit:
      if (m.sender != protocol::coordinator_id) throw protocol_error(who(self_) + ": QUIT not from the coordinator");
      phase_ = phase::done;
      pending_.clear();
      out.push_back(make(msg_type::bye, protocol::coordinator_id));
      return out;
    default:
      throw protocol_error(who(self_) + ": a layer does not accept " + protocol::to_string(m.type));
  }
  advance(out);
  return out;
}

void layer_machine::on_init(const message& m, std::vector<message>& out) {
  setup_ = decode_layer_setup(m.text);
  if (setup_.layer != self_)
    throw protocol_error(who(self_) + ": INIT is meant for layer " + std::to_string(setup_.layer));
  N_ = setup_.arch.layers;
  const auto& arch = setup_.arch;
  const matrix_view& W0 = need(m, payload_kind::W, who(self_));
  check_shape(W0, arch.rows_of(self_), arch.cols_of(self_), "initial W_" + std::to_string(self_));
  W_ = share(mat(W0.view()));
  if (self_ == 1) {
    X_ = need(m, payload_kind::X, who(self_));
    check_shape(X_, arch.input_dim, setup_.n_train, "X");
    if (setup_.n_test > 0) {
      X_test_ = need(m, payload_kind::X_test, who(self_));
      check_shape(X_test_, arch.input_dim, setup_.n_test, "X_test");
    }
  }
  if (self_ == N_) {
    Y_ = need(m, payload_kind::Y, who(self_));
    check_shape(Y_, arch.output_dim, setup_.n_train, "Y");
    if (setup_.n_test > 0) {
      Y_test_ = need(m, payload_kind::Y_test, who(self_));
      check_shape(Y_test_, arch.output_dim, setup_.n_test, "Y_test");
    }
  }
  tau_ = setup_.hp.tau;
  nu_ = setup_.hp.nu;
  initialised_ = true;
  phase_ = phase::idle;
  message ready = make(msg_type::ready, protocol::coordinator_id);
  out.push_back(std::move(ready));
}

core::block_state layer_machine::save_block() const {
  if (phase_ != phase::idle || !V_) throw protocol_error(who(self_) + ": a checkpoint needs an idle, started layer");
  core::block_state b;
  b.layer = self_;
  b.iteration = k_;
  b.tau = self_ < N_ ? tau_ : 0.0;  // layer N has no proximal step
  b.nu = self_ < N_ ? nu_ : 0.0;
  b.W = *W_;
  b.V = *V_;
  if (U_) b.U = *U_;
  if (Lambda_) b.Lambda = *Lambda_;
  b.pre = pre_;
  if (self_ > 1) b.V_prev = V_prev_.view();
  return b;
}

void layer_machine::restore_block(const core::block_state& b) {
  if (phase_ != phase::idle) throw protocol_error(who(self_) + ": restore only right after INIT");
  const auto& arch = setup_.arch;
  if (b.layer != self_) throw protocol_error(who(self_) + ": checkpoint block of layer " + std::to_string(b.layer));
  if (b.W.rows() != arch.rows_of(self_) || b.W.cols() != arch.cols_of(self_))
    throw protocol_error(who(self_) + ": checkpoint block does not fit this run's shapes");
  W_ = share(mat(b.W));
  k_ = b.iteration;
  if (self_ < N_) {
    tau_ = b.tau;
    nu_ = b.nu;
  }
  // A mini-batch checkpoint sits at an epoch end: the next STEP re-initialises
  // V, U and Lambda, so the weights and step-sizes are the whole state.
  if (b.V.cols() != setup_.n_train) return;
  V_ = share(mat(b.V));
  U_ = b.U.size() ? share(mat(b.U)) : nullptr;
  Lambda_ = b.Lambda.size() ? share(mat(b.Lambda)) : nullptr;
  pre_ = b.pre;
  // Full-batch state: V_0 is the whole of X, the targets the whole of Y.
  V_prev_ = self_ > 1 ? matrix_view(mat(b.V_prev)) : X_;
  if (self_ == N_) Y_batch_ = Y_.view();
  if (self_ < N_) {
    tau_ = b.tau;
    nu_ = b.nu;
  }
  k_ = b.iteration;
}

void layer_machine::on_step(const message& m) {
  if (m.iteration != k_)
    throw protocol_error(who(self_) + ": STEP " + std::to_string(m.batch) + " starts at iteration " +
                         std::to_string(m.iteration) + " but this layer is at " + std::to_string(k_));
  if (m.count < 0) throw protocol_error(who(self_) + ": STEP with a negative update count");
  step_batch_ = m.batch;
  step_count_ = m.count;
  step_done_ = 0;
  step_flags_ = m.flags;
  recorded_.clear();
  step_columns_.clear();
  if (const protocol::payload* cols = m.find(payload_kind::batch_columns)) {
    const auto v = cols->matrix.view();
    step_columns_.reserve(static_cast<std::size_t>(v.size()));
    for (Eigen::Index j = 0; j < v.size(); ++j) {
      const double c = v.data()[j];
      if (!(c >= 0 && c < static_cast<double>(setup_.n_train)) || c != static_cast<double>(static_cast<std::int64_t>(c)))
        throw protocol_error(who(self_) + ": STEP names column " + std::to_string(c) + " outside 0.." +
                             std::to_string(setup_.n_train - 1));
      step_columns_.push_back(static_cast<std::int64_t>(c));
    }
    if (step_columns_.empty()) throw protocol_error(who(self_) + ": STEP with an empty batch");
  }
  if (m.flags & protocol::step_flags::reset_state) {
    phase_ = phase::forward;
  } else {
    if (!V_) throw protocol_error(who(self_) + ": first STEP must reset the block variables");
    phase_ = step_count_ > 0 ? phase::update_W : phase::finish;  // an empty STEP (checkpoint) just SYNCs
  }
}

std::optional<message> layer_machine::take(msg_type type, protocol::node_id from) {
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->type == type && it->sender == from) {
      message m = std::move(*it);
      pending_.erase(it);
      return m;
    }
  }
  return std::nullopt;
}

void layer_machine::advance(std::vector<message>& out) {
  for (;;) {
    switch (phase_) {
      case phase::forward:
        if (!forward_init(out)) return;
        if (step_count_ > 0) {
          phase_ = phase::update_W;
        } else {
          finish_step(out);
          phase_ = phase::idle;
        }
        break;
      case phase::finish:
        finish_step(out);
        phase_ = phase::idle;
        break;
      case phase::update_W:
        update_W(out);
        phase_ = phase::wait_tick;
        break;
      case phase::wait_tick:
        if (!after_tick()) return;
        phase_ = phase::wait_tock;
        break;
      case phase::wait_tock:
        if (!after_tock(out)) return;
        if (++step_done_ == step_count_) {
          finish_step(out);
          phase_ = phase::idle;
        } else {
          phase_ = phase::update_W;
        }
        break;
      default:
        return;
    }
  }
}

// Forward-pass initialisation of Algorithms 3 and 4 on the STEP's batch.
bool layer_machine::forward_init(std::vector<message>& out) {
  const auto& arch = setup_.arch;
  const core::algorithm algo = setup_.hp.algo;
  const bool want_terms = (step_flags_ & protocol::step_flags::initial_metrics) != 0;
  std::optional<message> tick;
  if (self_ == 1) {
    V_prev_ = step_columns_.empty() ? X_ : matrix_view(core::take_columns(X_.view(), step_columns_));
  } else {
    tick = take(msg_type::tick, self_ - 1);
    if (!tick) return false;
    if (!(tick->flags & protocol::tick_flags::forward_init) || tick->iteration != k_)
      throw protocol_error(who(self_) + ": expected the forward-pass TICK of iteration " + std::to_string(k_) +
                           ", got TICK of iteration " + std::to_string(tick->iteration));
    V_prev_ = need(*tick, payload_kind::V, who(self_));
    check_shape(V_prev_, arch.cols_of(self_), step_columns_.empty() ? setup_.n_train
                                                                    : static_cast<long>(step_columns_.size()),
                "V_" + std::to_string(self_ - 1));
    if (want_terms) {
      F_prev_ = need(*tick, payload_kind::forward, who(self_));
      if (setup_.n_test > 0) F_prev_test_ = need(*tick, payload_kind::forward_test, who(self_));
    }
  }
  if (self_ == 1 && want_terms) {
    F_prev_ = X_;
    F_prev_test_ = X_test_;
  }
  span("forward", true);
  const auto Vp = V_prev_.view();
  core::layer_terms t;
  message next = make(msg_type::tick, self_ + 1);
  if (self_ < N_) {
    V_ = share(core::block_forward(arch.act, *W_, Vp, &pre_));
    if (algo == core::algorithm::three_split) {
      U_ = share(mat(pre_));
      Lambda_ = share(mat::Zero(pre_.rows(), pre_.cols()));
    }
    if (want_terms)
      t = core::initial_hidden_terms(arch.act, algo, *W_, Vp, *V_, U_ ? *U_ : mat(), Lambda_ ? *Lambda_ : mat());
  } else {
    Y_batch_ = step_columns_.empty() ? mat(Y_.view()) : core::take_columns(Y_.view(), step_columns_);
    V_ = share(core::mul(*W_, Vp));
    Lambda_ = share(mat::Zero(V_->rows(), V_->cols()));
    if (want_terms) t = core::initial_last_terms(*W_, Vp, *V_, *Lambda_, Y_batch_);
  }
  if (want_terms) propagate_forward(next, t);
  span("forward", false);
  if (self_ < N_) {
    next.iteration = k_;
    next.flags = protocol::tick_flags::forward_init | (want_terms ? protocol::tick_flags::has_forward : 0u);
    next.payloads.insert(next.payloads.begin(), protocol::payload{payload_kind::V, self_, matrix_view(V_)});
    out.push_back(std::move(next));
  }
  if (want_terms) record(t);
  F_prev_ = F_prev_test_ = matrix_view();
  return true;
}

void layer_machine::update_W(std::vector<message>& out) {
  const auto& arch = setup_.arch;
  const auto& hp = setup_.hp;
  const auto Vp = V_prev_.view();
  span("W", true);
  if (self_ == N_) {
    W_ = share(core::update_W_ridge(*V_, *Lambda_, Vp, hp.beta, hp.lambda));  // (8), (18)
  } else if (hp.algo == core::algorithm::two_split) {
    W_ = share(hp.var == core::variant::linearized
                   ? core::update_W_hidden_linearized(arch.act, *W_, Vp, *V_, pre_, hp.mu, hp.lambda, tau_)  // (10)
                   : core::update_W_hidden_proximal(arch.act, *W_, Vp, *V_, hp.mu, hp.lambda, tau_, hp.kappa,
                                                    hp.inner_tol, hp.inner_max_iter));  // (9)
  } else {
    W_ = share(core::update_W_ridge(*U_, *Lambda_, Vp, hp.beta, hp.lambda));  // (19)
  }
  span("W", false);
  if (self_ > 1) {
    // TOCK: what layer i-1 needs of this block for its V update at k+1.
    message tock = make(msg_type::tock, self_ - 1);
    tock.iteration = k_ + 1;
    tock.payloads.push_back({payload_kind::W, self_, matrix_view(W_)});
    tock.payloads.push_back({payload_kind::V, self_, matrix_view(V_)});
    if (hp.algo == core::algorithm::three_split && self_ < N_)
      tock.payloads.push_back({payload_kind::U, self_, matrix_view(U_)});
    if (hp.algo == core::algorithm::three_split || self_ == N_)
      tock.payloads.push_back({payload_kind::Lambda, self_, matrix_view(Lambda_)});
    out.push_back(std::move(tock));
  }
}

bool layer_machine::after_tick() {
  const auto& arch = setup_.arch;
  const auto& hp = setup_.hp;
  const bool recording = record_after_update();
  if (self_ > 1) {
    std::optional<message> tick = take(msg_type::tick, self_ - 1);
    if (!tick) return false;
    if ((tick->flags & protocol::tick_flags::forward_init) || tick->iteration != k_ + 1)
      throw protocol_error(who(self_) + ": expected TICK of iteration " + std::to_string(k_ + 1) + ", got " +
                           std::to_string(tick->iteration));
    V_prev_ = need(*tick, payload_kind::V, who(self_));
    check_shape(V_prev_, arch.cols_of(self_), V_->cols(), "V_" + std::to_string(self_ - 1));
    if (recording) {
      F_prev_ = need(*tick, payload_kind::forward, who(self_));
      if (setup_.n_test > 0) F_prev_test_ = need(*tick, payload_kind::forward_test, who(self_));
    }
  } else if (recording) {
    F_prev_ = X_;
    F_prev_test_ = X_test_;
  }
  if (self_ == N_) return true;  // layer N needs no TOCK: it finishes in after_tock
  const auto Vp = V_prev_.view();
  pre_ = core::mul(*W_, Vp);
  if (hp.algo == core::algorithm::two_split) {
    A_ = core::block_target(arch.act, Vp, pre_);
  } else {
    span("U", true);
    U_ = share(hp.var == core::variant::linearized
                   ? core::update_U_linearized(arch.act, *U_, Vp, *V_, pre_, *Lambda_, hp.mu, hp.beta, tau_)  // (21)
                   : core::update_U_proximal(arch.act, *U_, Vp, *V_, pre_, *Lambda_, hp.mu, hp.beta, tau_));  // (20)
    span("U", false);
    span("Lambda", true);
    mat L = *Lambda_;
    core::update_dual(L, pre_, *U_, hp.beta);  // (25)
    Lambda_ = share(std::move(L));
    span("Lambda", false);
  }
  return true;
}

bool layer_machine::after_tock(std::vector<message>& out) {
  const auto& arch = setup_.arch;
  const auto& hp = setup_.hp;
  const auto Vp = V_prev_.view();
  core::layer_terms t;
  if (self_ < N_) {
    std::optional<message> tock = take(msg_type::tock, self_ + 1);
    if (!tock) return false;
    if (tock->iteration != k_ + 1)
      throw protocol_error(who(self_) + ": expected TOCK of iteration " + std::to_string(k_ + 1) + ", got " +
                           std::to_string(tock->iteration));
    const std::string ctx = who(self_);
    const auto W_next = need(*tock, payload_kind::W, ctx).view();
    const auto V_next = need(*tock, payload_kind::V, ctx).view();
    const bool penultimate = self_ == N_ - 1;
    span("V", true);
    if (hp.algo == core::algorithm::two_split) {
      if (!penultimate) {
        V_ = share(hp.var == core::variant::linearized
                       ? core::update_V_hidden_linearized(arch.act, *V_, A_, W_next, V_next, hp.mu, nu_)  // (12)
                       : core::update_V_hidden_proximal(arch.act, *V_, A_, W_next, V_next, hp.mu, nu_,
                                                        hp.inner_tol, hp.inner_max_iter));  // (11)
      } else {
        const auto L_N = need(*tock, payload_kind::Lambda, ctx).view();
        V_ = share(core::update_V_penultimate(A_, W_next, V_next, L_N, hp.mu, hp.beta));  // (13)
      }
      span("V", false);
      if (record_after_update()) t = core::hidden_terms_2s(*W_, A_, *V_);
    } else {
      const auto L_next = need(*tock, payload_kind::Lambda, ctx).view();
      if (!penultimate) {
        const auto U_next = need(*tock, payload_kind::U, ctx).view();
        V_ = share(core::update_V_hidden_3s(arch.act, Vp, *U_, V_next, U_next, W_next, L_next, hp.mu, hp.beta));  // (22)
      } else {
        const mat A = core::block_target_3s(arch.act, Vp, *U_);
        V_ = share(core::update_V_penultimate(A, W_next, V_next, L_next, hp.mu, hp.beta));  // (23)
      }
      span("V", false);
      if (record_after_update()) t = core::hidden_terms_3s(arch.act, *W_, Vp, pre_, *U_, *V_, *Lambda_);
    }
  } else {
    span("V", true);
    const mat WV = core::mul(*W_, Vp);
    V_ = share(core::update_V_last(Y_batch_, WV, *Lambda_, hp.beta));  // (14), (24)
    span("V", false);
    span("Lambda", true);
    mat L = *Lambda_;
    core::update_dual(L, WV, *V_, hp.beta);  // (15), (26)
    Lambda_ = share(std::move(L));
    span("Lambda", false);
    if (record_after_update()) t = core::last_terms(*W_, WV, *V_, *Lambda_, Y_batch_);
  }
  core::check_finite(*W_, "W", self_, k_ + 1);
  if (U_ && self_ < N_) core::check_finite(*U_, "U", self_, k_ + 1);
  core::check_finite(*V_, "V", self_, k_ + 1);
  const bool recording = record_after_update();
  message next = make(msg_type::tick, self_ + 1);
  if (recording) propagate_forward(next, t);
  if (self_ < N_) {
    next.iteration = k_ + 1;
    next.flags = recording ? protocol::tick_flags::has_forward : 0u;
    next.payloads.insert(next.payloads.begin(), protocol::payload{payload_kind::V, self_, matrix_view(V_)});
    out.push_back(std::move(next));
  }
  ++k_;
  if (recording) record(t);
  tau_ *= hp.ef_tau;
  nu_ *= hp.ef_nu;
  F_prev_ = F_prev_test_ = matrix_view();
  A_.resize(0, 0);
  return true;
}

bool layer_machine::record_after_update() const {
  const long next = k_ + 1;
  if (setup_.metrics_every > 0 && next % setup_.metrics_every == 0) return true;
  return step_done_ + 1 == step_count_ && (step_flags_ & protocol::step_flags::want_metrics);
}

// The plain forward pass (for train and test MSE) rides along the TICKs:
// F_i = h(F_{i-1}) + sigma(W_i F_{i-1}) with the current W_i.
void layer_machine::propagate_forward(message& next_tick, core::layer_terms& t) {
  const auto& arch = setup_.arch;
  span("forward", true);
  if (self_ < N_) {
    next_tick.payloads.push_back(
        {payload_kind::forward, self_, matrix_view(core::block_forward(arch.act, *W_, F_prev_.view()))});
    if (setup_.n_test > 0)
      next_tick.payloads.push_back(
          {payload_kind::forward_test, self_, matrix_view(core::block_forward(arch.act, *W_, F_prev_test_.view()))});
  } else {
    t.pred_sq_train = core::forward_output_sq(*W_, F_prev_.view(), Y_.view());
    if (setup_.n_test > 0) t.pred_sq_test = core::forward_output_sq(*W_, F_prev_test_.view(), Y_test_.view());
  }
  span("forward", false);
}

void layer_machine::record(const core::layer_terms& t) {
  const std::size_t at = recorded_.size();
  recorded_.resize(at + 1 + core::layer_terms::fields);
  recorded_[at] = static_cast<double>(k_);
  t.to_array(recorded_.data() + at + 1);
}

void layer_machine::finish_step(std::vector<message>& out) {
  message sync = make(msg_type::sync, protocol::coordinator_id);
  sync.iteration = k_;
  sync.flags = step_flags_;
  const Eigen::Index rows = 1 + core::layer_terms::fields;
  const Eigen::Index points = static_cast<Eigen::Index>(recorded_.size()) / rows;
  sync.count = points;
  if (points > 0)
    sync.payloads.push_back(
        {payload_kind::metrics, self_, matrix_view(mat(Eigen::Map<const mat>(recorded_.data(), rows, points)))});
  if (step_flags_ & protocol::step_flags::want_weights) sync.payloads.push_back({payload_kind::W, self_, matrix_view(W_)});
  recorded_.clear();
  out.push_back(std::move(sync));
}

}  // namespace radmm::worker
