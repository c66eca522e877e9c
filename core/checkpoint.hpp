#pragma once
// One layer's share of the RADMM state at a STEP boundary, and its file format.
// A serial run writes every layer's block itself; in a parallel run each worker
// writes its own (Section VI-C: nobody else holds it). A checkpoint written by
// either can be resumed by either.
//
// Format (little-endian): "RADMMBLK", u32 version, i32 layer, i64 iteration,
// f64 tau, f64 nu, then six matrices (W, V, U, Lambda, pre, V_prev) each as
// i64 rows, i64 cols, rows*cols f64 column-major (0 x 0 when not held), then a
// u64 FNV-1a checksum of everything before it.
#include "core/types.hpp"

#include <cstdint>
#include <string>

namespace radmm::core {

struct block_state {
  int layer = 0;
  long iteration = 0;       // updates done
  double tau = 0, nu = 0;   // step-sizes for the next update
  mat W, V, U, Lambda;      // the block variables (U: 3s, i < N; Lambda: 3s, or layer N)
  mat pre;                  // cached W_i V_{i-1}
  mat V_prev;               // this layer's copy of V_{i-1} (layers 2..N)
};

inline constexpr std::uint32_t block_format_version = 1;

std::string encode_block(const block_state& b);
// Throws data_error naming `name` for a wrong magic, version, truncation,
// absurd sizes or a checksum mismatch.
block_state decode_block(const std::string& bytes, const std::string& name);
std::uint64_t fnv1a64(const std::string& bytes);

}  // namespace radmm::core
