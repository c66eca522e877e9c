#pragma once
// The messages of the parallel regional update (PRU) protocol, after the paper's
// Figure 7: STEP, TICK, TOCK, SYNC, QUIT, plus the start-up, acknowledgement and
// error messages that a sound protocol needs. A message is a small header plus
// matrix payloads; how a payload crosses the process boundary is the transport's
// business (a shared pointer in process, a {segment, offset, rows, cols,
// generation} descriptor over shared memory, bytes after the header over TCP).
#include "core/types.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace radmm::protocol {

inline constexpr std::uint32_t protocol_version = 1;

// Largest encoded message header (everything but matrix bytes), checked on encode
// and decode. Matrices travel outside the header, so this stays small.
inline constexpr std::size_t max_message_bytes = 16 * 1024;

enum class msg_type : std::uint8_t {
  hello = 1,  // worker -> coordinator: started, opened the transport
  init = 2,   // coordinator -> worker: config text, initial block, data
  ready = 3,  // worker -> coordinator: init done
  step = 4,   // coordinator -> workers: run `updates` iterations on a batch
  tick = 5,   // layer i -> layer i+1 after updating V_i (and U_i, Lambda_i)
  tock = 6,   // layer i+1 -> layer i after updating W_{i+1}
  sync = 7,   // worker -> coordinator: end of a STEP, metrics and maybe weights
  quit = 8,   // coordinator -> workers: finish and exit
  bye = 9,    // worker -> coordinator: acknowledges QUIT, about to exit 0
  error = 10  // any -> coordinator: a failure, with text
};

const char* to_string(msg_type t);

// Node ids: 0 is the coordinator, 1..N are the layers (the paper's i).
using node_id = std::int32_t;
inline constexpr node_id coordinator_id = 0;

// What a matrix payload holds; with `layer`, names it for traces and checks.
enum class payload_kind : std::uint8_t {
  W = 1, V = 2, U = 3, Lambda = 4,
  forward = 5,       // plain forward activation F_i (metrics), train rows
  forward_test = 6,  // plain forward activation on the test rows
  X = 7, Y = 8, X_test = 9, Y_test = 10,
  batch_columns = 11,  // column indices of a batch, as doubles
  metrics = 12         // per-iteration metric contributions (rows: fields, cols: iterations)
};
const char* to_string(payload_kind k);

// An immutable matrix payload. Either owns a heap matrix or views memory kept
// alive by `keep_alive` (a shared-memory slot). Receivers compute on view()
// directly: no copy is made on receipt.
class matrix_view {
 public:
  matrix_view() = default;
  explicit matrix_view(std::shared_ptr<const core::mat> owned);
  explicit matrix_view(core::mat&& value);
  matrix_view(const double* data, Eigen::Index rows, Eigen::Index cols,
              std::shared_ptr<const void> keep_alive);

  Eigen::Map<const core::mat> view() const { return {data_, rows_, cols_}; }
  const double* data() const { return data_; }
  Eigen::Index rows() const { return rows_; }
  Eigen::Index cols() const { return cols_; }
  std::size_t bytes() const { return static_cast<std::size_t>(rows_ * cols_) * sizeof(double); }
  bool empty() const { return data_ == nullptr; }

 private:
  std::shared_ptr<const void> keep_alive_;
  const double* data_ = nullptr;
  Eigen::Index rows_ = 0, cols_ = 0;
};

struct payload {
  payload_kind kind{};
  std::int32_t layer = 0;  // which block it belongs to (paper index)
  matrix_view matrix;
};

struct message {
  std::uint32_t version = protocol_version;
  msg_type type{};
  node_id sender = 0;
  node_id receiver = 0;
  std::int64_t iteration = -1;  // global update counter k (TICK/TOCK: the k+1 just computed)
  std::int64_t batch = -1;      // STEP sequence number, echoed by SYNC
  std::int64_t count = 0;       // STEP: updates to run; SYNC: iterations reported
  std::uint32_t flags = 0;      // see step_flags
  std::string text;             // INIT: config text; ERROR: reason
  std::vector<payload> payloads;

  const payload* find(payload_kind kind) const;
};

// Flags carried by STEP (and echoed by SYNC).
namespace step_flags {
inline constexpr std::uint32_t reset_state = 1u << 0;   // re-initialise V, U, Lambda from a forward pass
inline constexpr std::uint32_t want_weights = 1u << 1;  // SYNC carries W_i
inline constexpr std::uint32_t want_metrics = 1u << 2;  // record metric terms after the STEP's last update
inline constexpr std::uint32_t initial_metrics = 1u << 3;  // record metric terms at the reset point (row k = 0)
inline constexpr std::uint32_t checkpoint = 1u << 4;  // after the STEP, write the block to the directory in STEP.text
}  // namespace step_flags

// Flags carried by TICK.
namespace tick_flags {
inline constexpr std::uint32_t forward_init = 1u << 0;  // V_i of the forward-pass initialisation (iteration k, not k+1)
inline constexpr std::uint32_t has_forward = 1u << 1;   // carries the plain forward activations F_i for metrics
}  // namespace tick_flags

}  // namespace radmm::protocol
