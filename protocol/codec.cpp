#include "protocol/codec.hpp"

#include "protocol/transport.hpp"

#include <cereal/archives/portable_binary.hpp>

#include <algorithm>
#include <cstring>
#include <istream>
#include <limits>
#include <ostream>
#include <streambuf>
#include <string>

namespace radmm::protocol {
namespace {

constexpr std::uint32_t header_magic = 0x4d444152;  // "RADM" in little-endian bytes
// Smallest encoded descriptor: u8 + i32 + i32 + u64 + i64 + i64 + u64. Bounds
// the payload count before anything is allocated.
constexpr std::size_t descriptor_bytes = 1 + 4 + 4 + 8 + 8 + 8 + 8;
constexpr std::int64_t max_elements = std::numeric_limits<std::int64_t>::max() / 8;

bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

// Appends to a byte vector; saves the std::string copy an ostringstream makes.
class vector_sink : public std::streambuf {
 public:
  std::vector<std::uint8_t> bytes;

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    bytes.insert(bytes.end(), reinterpret_cast<const std::uint8_t*>(s),
                 reinterpret_cast<const std::uint8_t*>(s) + n);
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof()))
      bytes.push_back(static_cast<std::uint8_t>(traits_type::to_char_type(c)));
    return traits_type::not_eof(c);
  }
};

// Reads a caller's buffer in place; knows how much is left so sizes read from
// the input can be checked before anything is allocated for them.
class memory_source : public std::streambuf {
 public:
  memory_source(const void* data, std::size_t size) {
    char* begin = const_cast<char*>(static_cast<const char*>(data));  // never written: get area only
    setg(begin, begin, begin + size);
  }
  std::size_t remaining() const { return static_cast<std::size_t>(egptr() - gptr()); }
};

[[noreturn]] void fail(const std::string& what) { throw protocol_error("message decode: " + what); }

template <class E>
bool enum_in_range(std::uint8_t v, E lo, E hi) {
  return v >= static_cast<std::uint8_t>(lo) && v <= static_cast<std::uint8_t>(hi);
}

// rows*cols*sizeof(double) must be representable; catches negative and
// overflowing shapes from a forged header.
void check_shape(std::int64_t rows, std::int64_t cols, std::size_t index) {
  if (rows < 0 || cols < 0)
    fail("payload " + std::to_string(index) + " has negative shape " + std::to_string(rows) + "x" +
         std::to_string(cols));
  if (cols != 0 && rows > max_elements / cols)
    fail("payload " + std::to_string(index) + " shape " + std::to_string(rows) + "x" +
         std::to_string(cols) + " overflows");
}

wire_header decode_archive(memory_source& src, std::size_t size) {
  std::istream is(&src);
  cereal::PortableBinaryInputArchive ar(is);
  wire_header out;
  message& m = out.msg;

  std::uint32_t magic = 0;
  ar(magic);
  if (magic != header_magic) fail("not a radmm message (bad magic)");
  ar(m.version);
  if (m.version != protocol_version)
    fail("protocol version " + std::to_string(m.version) + ", this build speaks " +
         std::to_string(protocol_version));

  std::uint8_t type = 0;
  ar(type);
  if (!enum_in_range(type, msg_type::hello, msg_type::error))
    fail("unknown message type " + std::to_string(type));
  m.type = static_cast<msg_type>(type);

  ar(m.sender, m.receiver);
  if (m.sender < 0 || m.receiver < 0)
    fail("negative node id (sender " + std::to_string(m.sender) + ", receiver " +
         std::to_string(m.receiver) + ")");
  ar(m.iteration, m.batch, m.count, m.flags);

  std::uint32_t text_size = 0;
  ar(text_size);
  if (text_size > src.remaining())
    fail("text of " + std::to_string(text_size) + " bytes but only " +
         std::to_string(src.remaining()) + " left of " + std::to_string(size));
  m.text.resize(text_size);
  if (text_size > 0) ar(cereal::binary_data(m.text.data(), text_size));

  std::uint32_t count = 0;
  ar(count);
  if (count > src.remaining() / descriptor_bytes)
    fail(std::to_string(count) + " payloads cannot fit in the " +
         std::to_string(src.remaining()) + " bytes left");
  out.payloads.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    payload_descriptor& d = out.payloads[i];
    std::uint8_t kind = 0;
    ar(kind);
    if (!enum_in_range(kind, payload_kind::W, payload_kind::metrics))
      fail("payload " + std::to_string(i) + " has unknown kind " + std::to_string(kind));
    d.kind = static_cast<payload_kind>(kind);
    ar(d.layer, d.segment, d.offset, d.rows, d.cols, d.generation);
    if (d.layer < 0) fail("payload " + std::to_string(i) + " has negative layer");
    if (d.segment < -1) fail("payload " + std::to_string(i) + " has invalid segment");
    check_shape(d.rows, d.cols, i);
  }
  if (src.remaining() != 0) fail(std::to_string(src.remaining()) + " trailing bytes");
  return out;
}

}  // namespace

payload_descriptor describe(const payload& p) {
  payload_descriptor d;
  d.kind = p.kind;
  d.layer = p.layer;
  d.rows = p.matrix.rows();
  d.cols = p.matrix.cols();
  return d;
}

std::vector<std::uint8_t> encode_header(const message& m,
                                        const std::vector<payload_descriptor>& payloads) {
  if (payloads.size() != m.payloads.size())
    throw std::invalid_argument("encode_header: " + std::to_string(payloads.size()) +
                                " descriptors for " + std::to_string(m.payloads.size()) +
                                " payloads");
  // The sender's mistakes are reported at the sender: a default-constructed
  // type (0) or a forgotten receiver would otherwise surface far away.
  if (!enum_in_range(static_cast<std::uint8_t>(m.type), msg_type::hello, msg_type::error))
    throw protocol_error("message encode: invalid message type " +
                         std::to_string(static_cast<int>(m.type)));
  if (m.sender < 0 || m.receiver < 0)
    throw protocol_error(std::string("message encode: ") + to_string(m.type) + " with negative node id");
  for (const auto& d : payloads) {
    if (!enum_in_range(static_cast<std::uint8_t>(d.kind), payload_kind::W, payload_kind::metrics))
      throw protocol_error(std::string("message encode: ") + to_string(m.type) +
                           " carries a payload of invalid kind " + std::to_string(static_cast<int>(d.kind)));
    if (d.rows < 0 || d.cols < 0 || d.layer < 0)
      throw protocol_error(std::string("message encode: ") + to_string(m.type) +
                           " carries a payload with a negative shape or layer");
  }
  // Checked first so the u32 length fields below cannot wrap.
  if (m.text.size() > max_message_bytes || payloads.size() > max_message_bytes)
    throw protocol_error(std::string("message encode: ") + to_string(m.type) + " with " +
                         std::to_string(m.text.size()) + " bytes of text and " +
                         std::to_string(payloads.size()) + " payloads exceeds max_message_bytes (" +
                         std::to_string(max_message_bytes) + ")");
  vector_sink sink;
  sink.bytes.reserve(64 + m.text.size() + payloads.size() * descriptor_bytes);
  {
    std::ostream os(&sink);
    cereal::PortableBinaryOutputArchive ar(os, cereal::PortableBinaryOutputArchive::Options::LittleEndian());
    ar(header_magic, m.version, static_cast<std::uint8_t>(m.type), m.sender, m.receiver);
    ar(m.iteration, m.batch, m.count, m.flags);
    ar(static_cast<std::uint32_t>(m.text.size()));
    if (!m.text.empty()) ar(cereal::binary_data(m.text.data(), m.text.size()));
    ar(static_cast<std::uint32_t>(payloads.size()));
    for (const auto& d : payloads)
      ar(static_cast<std::uint8_t>(d.kind), d.layer, d.segment, d.offset, d.rows, d.cols,
         d.generation);
  }
  if (sink.bytes.size() > max_message_bytes)
    throw protocol_error(std::string("message encode: ") + to_string(m.type) + " header is " +
                         std::to_string(sink.bytes.size()) + " bytes, over max_message_bytes (" +
                         std::to_string(max_message_bytes) + ")");
  return std::move(sink.bytes);
}

wire_header decode_header(const void* data, std::size_t size) {
  if (size > max_message_bytes)
    fail("header of " + std::to_string(size) + " bytes is over max_message_bytes (" +
         std::to_string(max_message_bytes) + ")");
  if (size == 0 || data == nullptr) fail("empty input");
  const auto endian_flag = *static_cast<const std::uint8_t*>(data);
  if (endian_flag > 1) fail("bad byte-order flag " + std::to_string(endian_flag));
  memory_source src(data, size);
  try {
    return decode_archive(src, size);
  } catch (const protocol_error&) {
    throw;
  } catch (const cereal::Exception& e) {
    fail("truncated input of " + std::to_string(size) + " bytes (" + e.what() + ")");
  } catch (const std::exception& e) {
    // Defensive: the checks above should leave nothing else, but a decoder must
    // report every failure the same way.
    fail(std::string("malformed input: ") + e.what());
  }
}

std::vector<std::uint8_t> encode_with_bytes(const message& m) {
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
  const auto header = encode_header(m, descriptors);
  std::vector<std::uint8_t> frame;
  frame.reserve(frame_prefix_bytes + header.size() + offset);
  const auto len = static_cast<std::uint32_t>(header.size());
  for (int i = 0; i < 4; ++i) frame.push_back(static_cast<std::uint8_t>(len >> (8 * i)));
  frame.insert(frame.end(), header.begin(), header.end());
  const bool little = host_is_little_endian();
  for (const auto& p : m.payloads) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(p.matrix.data());
    const std::size_t n = p.matrix.bytes();
    if (n == 0) continue;
    const std::size_t at = frame.size();
    frame.insert(frame.end(), bytes, bytes + n);
    if (!little)
      for (std::size_t i = at; i < frame.size(); i += sizeof(double))
        std::reverse(frame.begin() + static_cast<std::ptrdiff_t>(i),
                     frame.begin() + static_cast<std::ptrdiff_t>(i + sizeof(double)));
  }
  return frame;
}

message decode_with_bytes(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  if (size < frame_prefix_bytes || bytes == nullptr)
    fail("frame of " + std::to_string(size) + " bytes has no length prefix");
  std::uint32_t len = 0;
  for (int i = 0; i < 4; ++i) len |= static_cast<std::uint32_t>(bytes[i]) << (8 * i);
  if (len > max_message_bytes)
    fail("frame header length " + std::to_string(len) + " is over max_message_bytes (" +
         std::to_string(max_message_bytes) + ")");
  if (len > size - frame_prefix_bytes)
    fail("frame header length " + std::to_string(len) + " but only " +
         std::to_string(size - frame_prefix_bytes) + " bytes follow");
  wire_header h = decode_header(bytes + frame_prefix_bytes, len);
  const std::uint8_t* body = bytes + frame_prefix_bytes + len;
  const std::size_t body_size = size - frame_prefix_bytes - len;
  const bool little = host_is_little_endian();
  std::size_t at = 0;
  h.msg.payloads.reserve(h.payloads.size());
  for (std::size_t i = 0; i < h.payloads.size(); ++i) {
    const payload_descriptor& d = h.payloads[i];
    if (d.segment != -1) fail("frame payload " + std::to_string(i) + " names a segment");
    if (d.offset != at) fail("frame payload " + std::to_string(i) + " is not contiguous");
    const std::size_t n = d.bytes();
    if (n > body_size - at)
      fail("frame payload " + std::to_string(i) + " needs " + std::to_string(n) +
           " bytes but only " + std::to_string(body_size - at) + " are left");
    core::mat value(d.rows, d.cols);
    if (n > 0) std::memcpy(value.data(), body + at, n);
    if (!little)
      for (std::size_t j = 0; j < n; j += sizeof(double))
        std::reverse(reinterpret_cast<std::uint8_t*>(value.data()) + j,
                     reinterpret_cast<std::uint8_t*>(value.data()) + j + sizeof(double));
    at += n;
    h.msg.payloads.push_back(payload{d.kind, d.layer, matrix_view(std::move(value))});
  }
  if (at != body_size) fail(std::to_string(body_size - at) + " trailing bytes after the matrices");
  return std::move(h.msg);
}

}  // namespace radmm::protocol
