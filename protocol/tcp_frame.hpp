#pragma once
// The frame layer of the TCP transport (tcp.hpp): a fixed 20-byte prefix, then
// a header, then matrix bytes. Pure functions over bytes, shared by the socket
// reader (which reads the same fields straight from the stream) and by tests
// and fuzzing (which feed whole buffers). Everything read is hostile until
// checked: any malformed input is a protocol_error, never a crash, and nothing
// is allocated beyond the sizes the prefix declares within the limit.
//
// Prefix (little-endian):
//   u32 magic "RDMF" | u16 version (protocol_version) | u8 kind | u8 zero |
//   u32 header bytes H | u64 matrix bytes B
// A message frame's header is the codec's encode_header output, each payload
// described with segment -1 and offset = bytes from the start of the matrix
// bytes (contiguous, in payload order); B is the sum of the payloads' bytes.
// Control frames carry their body in the header and have B = 0.
#include "protocol/codec.hpp"
#include "protocol/message.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace radmm::protocol {

enum class frame_kind : std::uint8_t {
  message = 1,       // a protocol message
  heartbeat = 2,     // empty; keeps a quiet link alive
  challenge = 3,     // listener -> connector: 32-byte nonce
  auth = 4,          // connector -> listener: nonce, node id, listen address, HMAC
  accept = 5,        // listener -> connector: node id and HMAC (proves the token back)
  reject = 6,        // either way: the reason, then the connection closes
  address_book = 7,  // coordinator -> worker: "node host port" lines
  goodbye = 8        // the sender is closing this link cleanly; optional reason
};
const char* to_string(frame_kind k);

inline constexpr std::uint32_t frame_magic = 0x464d4452;  // "RDMF" in little-endian bytes
inline constexpr std::size_t frame_prefix_size = 20;
// Largest body of a control frame (the address book of a very large run fits).
inline constexpr std::size_t max_control_bytes = std::size_t{1} << 20;

struct frame_prefix {
  frame_kind kind{};
  std::uint32_t header_bytes = 0;
  std::uint64_t matrix_bytes = 0;
};

void write_frame_prefix(std::uint8_t* out, const frame_prefix& p);
// Checks magic, version, kind and the limits (header at most
// max_message_bytes for a message, max_control_bytes otherwise; B = 0 for
// control frames; H + B at most max_frame_bytes).
frame_prefix parse_frame_prefix(const std::uint8_t* in, std::uint64_t max_frame_bytes);

// The prefix and header of a message frame (matrices follow, in payload order,
// as raw little-endian doubles).
std::vector<std::uint8_t> encode_message_head(const message& m);
// A whole control frame.
std::vector<std::uint8_t> encode_control_frame(frame_kind kind, const std::string& body);
// A whole message frame (a copy of every matrix; for tests and traces).
std::vector<std::uint8_t> encode_frame(const message& m);

// The message a frame's header describes, with each matrix read by
// `read(void* dst, std::size_t n)` into a freshly allocated matrix that the
// returned view owns. Checks that the descriptors are framed (segment -1),
// contiguous and add up to `matrix_bytes` before anything is allocated.
template <class Read>
message decode_message_frame(const std::uint8_t* header, std::size_t header_bytes, std::uint64_t matrix_bytes,
                             Read&& read);

struct decoded_frame {
  frame_kind kind{};
  std::string body;  // control frames
  message msg;       // message frames
};
// Decodes exactly one whole frame from a buffer; throws protocol_error when it
// is malformed, truncated, longer than its prefix says or over the limit.
decoded_frame decode_frame(const void* data, std::size_t size, std::uint64_t max_frame_bytes);

// ---- implementation of the template -------------------------------------

namespace detail {
// Checks the descriptors against matrix_bytes; throws protocol_error.
void check_frame_payloads(const wire_header& h, std::uint64_t matrix_bytes);
bool host_is_little_endian();
void swap_doubles(double* data, std::size_t count);
}  // namespace detail

template <class Read>
message decode_message_frame(const std::uint8_t* header, std::size_t header_bytes, std::uint64_t matrix_bytes,
                             Read&& read) {
  wire_header h = decode_header(header, header_bytes);
  detail::check_frame_payloads(h, matrix_bytes);
  message& m = h.msg;
  m.payloads.reserve(h.payloads.size());
  for (const payload_descriptor& d : h.payloads) {
    // An Eigen allocation, aligned like every other matrix of a serial run, so
    // vectorised reductions on it round the same way.
    core::mat value(d.rows, d.cols);
    const std::size_t n = d.bytes();
    if (n > 0) read(static_cast<void*>(value.data()), n);
    if (!detail::host_is_little_endian()) detail::swap_doubles(value.data(), n / sizeof(double));
    m.payloads.push_back(payload{d.kind, d.layer, matrix_view(std::move(value))});
  }
  return std::move(m);
}

}  // namespace radmm::protocol
