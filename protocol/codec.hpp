#pragma once
// The wire form of a message header: everything but matrix bytes, with each
// payload lowered to a descriptor that the transport maps to memory. Encoded
// with cereal's portable binary archive, always little-endian, so the bytes are
// the same on every host. Decoding treats its input as hostile: any malformed,
// truncated, oversized or foreign input is a protocol_error, never a crash and
// never an allocation larger than the input.
//
// Header layout (protocol_version 1), after cereal's one endianness byte:
//   u32 magic "RADM", u32 version, u8 type, i32 sender, i32 receiver,
//   i64 iteration, i64 batch, i64 count, u32 flags, u32 text length, text bytes,
//   u32 payload count, then per payload: u8 kind, i32 layer, i32 segment,
//   u64 offset, i64 rows, i64 cols, u64 generation.
#include "protocol/message.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace radmm::protocol {

// Where a payload's matrix lives, as the transport chose: over shared memory
// `segment` is the sending node's segment and `offset` a slot's handle in it;
// in a framed buffer (encode_with_bytes) `segment` is -1 and `offset` counts
// bytes from the end of the header. Matrices are column-major doubles.
struct payload_descriptor {
  payload_kind kind{};
  std::int32_t layer = 0;
  std::int32_t segment = -1;
  std::uint64_t offset = 0;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::uint64_t generation = 0;

  std::size_t bytes() const { return static_cast<std::size_t>(rows * cols) * sizeof(double); }
};

// A decoded header: `msg` has every field but its payloads; `payloads` holds
// their descriptors in order.
struct wire_header {
  message msg;
  std::vector<payload_descriptor> payloads;
};

// Descriptor with kind, layer and shape of `p`; where it lives is left unset.
payload_descriptor describe(const payload& p);

// Encodes m's header with `payloads` (one per m.payloads, same order) in place
// of its matrices. Throws protocol_error when the result exceeds
// max_message_bytes or m has an invalid type, payload kind or negative node id
// (what decode would refuse), std::invalid_argument when the counts differ.
std::vector<std::uint8_t> encode_header(const message& m,
                                        const std::vector<payload_descriptor>& payloads);

// Inverse of encode_header. Throws protocol_error on any malformed input: a
// wrong magic or version, truncation, trailing bytes, an unknown enum value, a
// negative node id or shape, rows*cols*8 overflowing, more than
// max_message_bytes.
wire_header decode_header(const void* data, std::size_t size);

// A self-contained frame (for a stream transport and for traces):
//   u32 little-endian header length, the header, then each payload's matrix as
//   raw little-endian doubles, column-major, in payload order.
// The header length is at most max_message_bytes; the matrix bytes are not
// limited by the codec.
inline constexpr std::size_t frame_prefix_bytes = 4;
std::vector<std::uint8_t> encode_with_bytes(const message& m);
// Decodes a whole frame; the matrices are copied into owned matrices. Throws
// protocol_error when the frame is malformed or its size disagrees with the
// header.
message decode_with_bytes(const void* data, std::size_t size);

}  // namespace radmm::protocol
