#pragma once
// The layer machine: block i of the parallel regional update (Algorithms 3 and
// 4) as a pure state machine. One message in, the messages to send out. It has
// no transport, no clock and no threads, so it runs unchanged in a test, in a
// thread of the in-process network, in a `radmm-worker` process over shared
// memory, and over TCP; a recorded trace can be fed back into a fresh machine.
//
// Per iteration k -> k+1, layer i (1 <= i <= N) does what the serial sweep does
// for its block, in the order the Gauss-Seidel dependencies allow:
//   1. W_i^{k+1} from its own block and V_{i-1}^k        ((8)/(10)/(9) or (18)/(19))
//   2. TOCK to layer i-1: W_i^{k+1}, V_i^k (3s: U_i^k, Lambda_i^k; layer N: Lambda_N^k)
//   3. wait for TICK(k+1) from layer i-1: V_{i-1}^{k+1}
//      3s: U_i^{k+1} ((21)/(20)) and Lambda_i^{k+1} (25)
//   4. wait for TOCK(k+1) from layer i+1; V_i^{k+1} ((12)/(11)/(13)/(22)/(23));
//      layer N: V_N^{k+1} (14)/(24), Lambda_N^{k+1} (15)/(26)
//   5. TICK(k+1) to layer i+1: V_i^{k+1} (and, when metrics are due, the plain
//      forward activations F_i on the train and test rows).
// Layer 1 reads V_0 = X from its own data; layer N holds W_N, V_N, Lambda_N
// and the targets. A STEP starts `count` iterations on a batch (after a forward
// pass that re-initialises V, U, Lambda when asked); a SYNC reports the metric
// terms recorded during the STEP and, when asked, W_i.
#include "core/checkpoint.hpp"
#include "core/metrics.hpp"
#include "protocol/message.hpp"
#include "worker/layer_setup.hpp"

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace radmm::worker {

class layer_machine {
 public:
  explicit layer_machine(protocol::node_id self);

  // Consumes one message and returns those to send, in order. Throws
  // protocol::protocol_error for a message the protocol does not allow here.
  std::vector<protocol::message> handle(const protocol::message& m);

  bool finished() const { return phase_ == phase::done; }
  protocol::node_id self() const { return self_; }
  bool initialised() const { return initialised_; }
  long iteration() const { return k_; }
  const core::mat& weights() const { return *W_; }
  // Bytes of the block variables this layer holds (own matrices and the
  // neighbour views it keeps), for the memory report of Section VI-C.
  std::size_t block_bytes() const;

  // Checkpoints: this layer's block at a STEP boundary (between STEPs), and
  // its restoration right after INIT. The driver does the file I/O.
  core::block_state save_block() const;
  void restore_block(const core::block_state& b);

  // Optional observer of compute spans (block name such as "W", "U", "V",
  // "Lambda", "forward"; begin or end), so a driver can timestamp them.
  using span_observer = std::function<void(const char* block, bool begin)>;
  void set_span_observer(span_observer obs) { observe_ = std::move(obs); }

 private:
  enum class phase { wait_init, idle, forward, update_W, wait_tick, wait_tock, finish, done };
  using sp = std::shared_ptr<const core::mat>;

  void on_init(const protocol::message& m, std::vector<protocol::message>& out);
  void on_step(const protocol::message& m);
  void advance(std::vector<protocol::message>& out);
  std::optional<protocol::message> take(protocol::msg_type type, protocol::node_id from);

  bool forward_init(std::vector<protocol::message>& out);
  void update_W(std::vector<protocol::message>& out);
  bool after_tick();
  bool after_tock(std::vector<protocol::message>& out);
  void finish_step(std::vector<protocol::message>& out);

  bool record_after_update() const;
  void record(const core::layer_terms& t);
  void propagate_forward(protocol::message& next_tick, core::layer_terms& t);
  protocol::message make(protocol::msg_type type, protocol::node_id to) const;
  void span(const char* block, bool begin) const {
    if (observe_) observe_(block, begin);
  }

  protocol::node_id self_;
  int N_ = 0;
  bool initialised_ = false;
  phase phase_ = phase::wait_init;
  layer_setup setup_;
  std::deque<protocol::message> pending_;
  span_observer observe_;

  // The STEP in progress.
  std::int64_t step_batch_ = -1;
  std::int64_t step_count_ = 0;
  std::int64_t step_done_ = 0;
  std::uint32_t step_flags_ = 0;
  std::vector<std::int64_t> step_columns_;  // empty: every column
  std::vector<double> recorded_;            // (1 + layer_terms::fields) per recorded point

  // Block variables (Section VI-C: only this block's).
  long k_ = 0;
  double tau_ = 0, nu_ = 0;
  sp W_, V_, U_, Lambda_;
  core::mat pre_;                 // cached W_i V_{i-1} (see core::admm_state::pre)
  protocol::matrix_view V_prev_;  // V_{i-1}: the batch of X (layer 1) or the last TICK
  protocol::matrix_view F_prev_, F_prev_test_;  // forward activations of the TICK being used
  core::mat A_;                   // 2s: target h(V_{i-1}) + sigma(pre) of the V update
  core::layer_terms terms_;       // terms of the iteration in progress
  // Data: layer 1 holds X (train, test), layer N holds Y (train, test) and the batch of Y.
  protocol::matrix_view X_, X_test_, Y_, Y_test_;
  core::mat Y_batch_;
};

}  // namespace radmm::worker
