#pragma once
// What a layer worker is told at INIT besides its matrices: the architecture,
// the hyper-parameters and the metrics schedule. Travels as the INIT message's
// text, one "key=value" per line, doubles printed with 17 significant digits so
// the worker's numbers equal the coordinator's bit for bit.
#include "core/hyper.hpp"
#include "core/model.hpp"

#include <string>

namespace radmm::worker {

struct layer_setup {
  core::architecture arch;
  core::hyper_params hp;
  int layer = 0;            // this worker's block, 1..N
  long total_iterations = 0;
  // Full batch: record metrics after every update k with k % metrics_every == 0
  // (0: only where a STEP asks for them, see protocol::step_flags).
  long metrics_every = 0;
  long n_train = 0, n_test = 0;  // columns of the full train and test sets
};

std::string encode_layer_setup(const layer_setup& s);
// Throws protocol::protocol_error naming the missing or malformed key.
layer_setup decode_layer_setup(const std::string& text);

}  // namespace radmm::worker
