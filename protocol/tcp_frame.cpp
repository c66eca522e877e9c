#include "protocol/tcp_frame.hpp"

#include "protocol/transport.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace radmm::protocol {
namespace {

[[noreturn]] void fail(const std::string& what) { throw protocol_error("tcp frame: " + what); }

void put_le(std::uint8_t* out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t get_le(const std::uint8_t* in, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(in[i]) << (8 * i);
  return v;
}

bool valid_kind(std::uint8_t k) {
  return k >= static_cast<std::uint8_t>(frame_kind::message) && k <= static_cast<std::uint8_t>(frame_kind::goodbye);
}

}  // namespace

const char* to_string(frame_kind k) {
  switch (k) {
    case frame_kind::message: return "MESSAGE";
    case frame_kind::heartbeat: return "HEARTBEAT";
    case frame_kind::challenge: return "CHALLENGE";
    case frame_kind::auth: return "AUTH";
    case frame_kind::accept: return "ACCEPT";
    case frame_kind::reject: return "REJECT";
    case frame_kind::address_book: return "ADDRESS_BOOK";
    case frame_kind::goodbye: return "GOODBYE";
  }
  return "UNKNOWN";
}

namespace detail {

bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

void swap_doubles(double* data, std::size_t count) {
  auto* bytes = reinterpret_cast<std::uint8_t*>(data);
  for (std::size_t i = 0; i < count; ++i) std::reverse(bytes + 8 * i, bytes + 8 * i + 8);
}

void check_frame_payloads(const wire_header& h, std::uint64_t matrix_bytes) {
  std::uint64_t at = 0;
  for (std::size_t i = 0; i < h.payloads.size(); ++i) {
    const payload_descriptor& d = h.payloads[i];
    if (d.segment != -1) fail("payload " + std::to_string(i) + " names shared-memory segment " + std::to_string(d.segment));
    if (d.offset != at)
      fail("payload " + std::to_string(i) + " at offset " + std::to_string(d.offset) + ", expected " +
           std::to_string(at));
    // The codec bounds rows*cols*8 by int64; the sum is bounded by matrix_bytes.
    const std::uint64_t n = static_cast<std::uint64_t>(d.rows) * static_cast<std::uint64_t>(d.cols) * 8u;
    if (n > matrix_bytes - at)
      fail("payload " + std::to_string(i) + " (" + std::to_string(d.rows) + "x" + std::to_string(d.cols) +
           ") runs past the " + std::to_string(matrix_bytes) + " matrix bytes of the frame");
    at += n;
  }
  if (at != matrix_bytes)
    fail("payloads hold " + std::to_string(at) + " bytes but the frame carries " + std::to_string(matrix_bytes));
}

}  // namespace detail

void write_frame_prefix(std::uint8_t* out, const frame_prefix& p) {
  put_le(out, frame_magic, 4);
  put_le(out + 4, protocol_version, 2);
  out[6] = static_cast<std::uint8_t>(p.kind);
  out[7] = 0;
  put_le(out + 8, p.header_bytes, 4);
  put_le(out + 12, p.matrix_bytes, 8);
}

frame_prefix parse_frame_prefix(const std::uint8_t* in, std::uint64_t max_frame_bytes) {
  const auto magic = static_cast<std::uint32_t>(get_le(in, 4));
  if (magic != frame_magic) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", magic);
    fail(std::string("bad magic ") + hex + " (not a radmm peer)");
  }
  const auto version = static_cast<std::uint32_t>(get_le(in + 4, 2));
  if (version != protocol_version)
    fail("protocol version " + std::to_string(version) + ", this build speaks " + std::to_string(protocol_version));
  if (!valid_kind(in[6])) fail("unknown frame kind " + std::to_string(in[6]));
  if (in[7] != 0) fail("reserved byte is " + std::to_string(in[7]));
  frame_prefix p;
  p.kind = static_cast<frame_kind>(in[6]);
  p.header_bytes = static_cast<std::uint32_t>(get_le(in + 8, 4));
  p.matrix_bytes = get_le(in + 12, 8);
  if (p.kind == frame_kind::message) {
    if (p.header_bytes == 0 || p.header_bytes > max_message_bytes)
      fail("message header of " + std::to_string(p.header_bytes) + " bytes (limit " +
           std::to_string(max_message_bytes) + ")");
  } else {
    if (p.header_bytes > max_control_bytes)
      fail(std::string(to_string(p.kind)) + " body of " + std::to_string(p.header_bytes) + " bytes (limit " +
           std::to_string(max_control_bytes) + ")");
    if (p.matrix_bytes != 0) fail(std::string(to_string(p.kind)) + " frame with matrix bytes");
  }
  if (p.matrix_bytes > max_frame_bytes || p.header_bytes > max_frame_bytes - p.matrix_bytes)
    fail("frame of " + std::to_string(p.header_bytes) + " + " + std::to_string(p.matrix_bytes) +
         " bytes is over the limit of " + std::to_string(max_frame_bytes));
  return p;
}

std::vector<std::uint8_t> encode_message_head(const message& m) {
  std::vector<payload_descriptor> descriptors;
  descriptors.reserve(m.payloads.size());
  std::uint64_t offset = 0;
  for (const auto& p : m.payloads) {
    payload_descriptor d = describe(p);
    d.segment = -1;
    d.offset = offset;
    offset += d.bytes();
    descriptors.push_back(d);
  }
  const std::vector<std::uint8_t> header = encode_header(m, descriptors);
  std::vector<std::uint8_t> out(frame_prefix_size + header.size());
  write_frame_prefix(out.data(), {frame_kind::message, static_cast<std::uint32_t>(header.size()), offset});
  std::memcpy(out.data() + frame_prefix_size, header.data(), header.size());
  return out;
}

std::vector<std::uint8_t> encode_control_frame(frame_kind kind, const std::string& body) {
  if (kind == frame_kind::message) throw std::invalid_argument("encode_control_frame: MESSAGE is not a control frame");
  if (body.size() > max_control_bytes)
    throw protocol_error(std::string("tcp frame: ") + to_string(kind) + " body of " + std::to_string(body.size()) +
                         " bytes is over the limit");
  std::vector<std::uint8_t> out(frame_prefix_size + body.size());
  write_frame_prefix(out.data(), {kind, static_cast<std::uint32_t>(body.size()), 0});
  if (!body.empty()) std::memcpy(out.data() + frame_prefix_size, body.data(), body.size());
  return out;
}

std::vector<std::uint8_t> encode_frame(const message& m) {
  std::vector<std::uint8_t> out = encode_message_head(m);
  const bool little = detail::host_is_little_endian();
  for (const auto& p : m.payloads) {
    const std::size_t n = p.matrix.bytes();
    if (n == 0) continue;
    const std::size_t at = out.size();
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(p.matrix.data());
    out.insert(out.end(), bytes, bytes + n);
    if (!little) detail::swap_doubles(reinterpret_cast<double*>(out.data() + at), n / 8);
  }
  return out;
}

decoded_frame decode_frame(const void* data, std::size_t size, std::uint64_t max_frame_bytes) {
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  if (bytes == nullptr || size < frame_prefix_size)
    fail("truncated: " + std::to_string(size) + " bytes, a prefix needs " + std::to_string(frame_prefix_size));
  const frame_prefix p = parse_frame_prefix(bytes, max_frame_bytes);
  const std::size_t rest = size - frame_prefix_size;
  if (p.header_bytes > rest || p.matrix_bytes > rest - p.header_bytes)
    fail("truncated: the prefix announces " + std::to_string(p.header_bytes) + " + " +
         std::to_string(p.matrix_bytes) + " bytes, " + std::to_string(rest) + " follow");
  if (p.header_bytes + p.matrix_bytes != rest)
    fail(std::to_string(rest - p.header_bytes - p.matrix_bytes) + " trailing bytes after the frame");
  decoded_frame out;
  out.kind = p.kind;
  const std::uint8_t* header = bytes + frame_prefix_size;
  if (p.kind != frame_kind::message) {
    out.body.assign(reinterpret_cast<const char*>(header), p.header_bytes);
    return out;
  }
  const std::uint8_t* at = header + p.header_bytes;
  out.msg = decode_message_frame(header, p.header_bytes, p.matrix_bytes, [&](void* dst, std::size_t n) {
    std::memcpy(dst, at, n);
    at += n;
  });
  return out;
}

}  // namespace radmm::protocol
