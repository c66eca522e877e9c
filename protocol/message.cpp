#include "protocol/message.hpp"

#include <stdexcept>
#include <string>

namespace radmm::protocol {

const char* to_string(msg_type t) {
  switch (t) {
    case msg_type::hello: return "HELLO";
    case msg_type::init: return "INIT";
    case msg_type::ready: return "READY";
    case msg_type::step: return "STEP";
    case msg_type::tick: return "TICK";
    case msg_type::tock: return "TOCK";
    case msg_type::sync: return "SYNC";
    case msg_type::quit: return "QUIT";
    case msg_type::bye: return "BYE";
    case msg_type::error: return "ERROR";
  }
  // Reachable only through a cast of an unchecked integer; the codec rejects those.
  return "UNKNOWN";
}

const char* to_string(payload_kind k) {
  switch (k) {
    case payload_kind::W: return "W";
    case payload_kind::V: return "V";
    case payload_kind::U: return "U";
    case payload_kind::Lambda: return "Lambda";
    case payload_kind::forward: return "forward";
    case payload_kind::forward_test: return "forward_test";
    case payload_kind::X: return "X";
    case payload_kind::Y: return "Y";
    case payload_kind::X_test: return "X_test";
    case payload_kind::Y_test: return "Y_test";
    case payload_kind::batch_columns: return "batch_columns";
    case payload_kind::metrics: return "metrics";
  }
  return "unknown";
}

matrix_view::matrix_view(std::shared_ptr<const core::mat> owned)
    : data_(owned ? owned->data() : nullptr),
      rows_(owned ? owned->rows() : 0),
      cols_(owned ? owned->cols() : 0) {
  keep_alive_ = std::move(owned);
}

matrix_view::matrix_view(core::mat&& value)
    : matrix_view(std::make_shared<const core::mat>(std::move(value))) {}

matrix_view::matrix_view(const double* data, Eigen::Index rows, Eigen::Index cols,
                         std::shared_ptr<const void> keep_alive)
    : keep_alive_(std::move(keep_alive)), data_(data), rows_(rows), cols_(cols) {
  if (rows < 0 || cols < 0)
    throw std::invalid_argument("matrix_view: negative shape " + std::to_string(rows) + "x" +
                                std::to_string(cols));
  if (data == nullptr && rows * cols != 0)
    throw std::invalid_argument("matrix_view: null data for a " + std::to_string(rows) + "x" +
                                std::to_string(cols) + " matrix");
}

const payload* message::find(payload_kind kind) const {
  for (const auto& p : payloads)
    if (p.kind == kind) return &p;
  return nullptr;
}

}  // namespace radmm::protocol
