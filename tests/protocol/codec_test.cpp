#include "protocol/codec.hpp"
#include "protocol/transport.hpp"

#include "core/rng.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

using namespace radmm;
using namespace radmm::protocol;

namespace {

const std::vector<msg_type> all_types = {msg_type::hello, msg_type::init, msg_type::ready,
                                         msg_type::step,  msg_type::tick, msg_type::tock,
                                         msg_type::sync,  msg_type::quit, msg_type::bye,
                                         msg_type::error};

core::mat random_matrix(core::rng& r, Eigen::Index rows, Eigen::Index cols) {
  core::mat m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = r.normal();
  return m;
}

message sample(msg_type type, core::rng& r) {
  message m;
  m.type = type;
  m.sender = 3;
  m.receiver = 4;
  m.iteration = 1234567890123;
  m.batch = -1;
  m.count = 42;
  m.flags = step_flags::want_weights | step_flags::want_metrics;
  m.text = type == msg_type::error ? "layer 3: NaN in V" : std::string("text\0with nul", 13);
  m.payloads.push_back({payload_kind::W, 3, matrix_view(random_matrix(r, 4, 3))});
  m.payloads.push_back({payload_kind::Lambda, 4, matrix_view(random_matrix(r, 1, 7))});
  return m;
}

std::vector<payload_descriptor> descriptors_for(const message& m) {
  std::vector<payload_descriptor> d;
  std::uint64_t i = 0;
  for (const auto& p : m.payloads) {
    auto x = describe(p);
    x.segment = static_cast<std::int32_t>(i);
    x.offset = 4096 * (i + 1);
    x.generation = 77 + i;
    d.push_back(x);
    ++i;
  }
  return d;
}

// A header with no text and one descriptor, to patch at known offsets:
// 1 endian byte + magic 4 + version 4 = type at 9; text length at 46; payload
// count at 50; the descriptor starts at 54 (kind), layer 55, segment 59,
// offset 63, rows 71, cols 79, generation 87.
std::vector<std::uint8_t> one_payload_header() {
  message m;
  m.type = msg_type::tick;
  m.sender = 1;
  m.receiver = 2;
  m.payloads.push_back({payload_kind::V, 1, matrix_view(core::mat::Zero(2, 3))});
  return encode_header(m, {describe(m.payloads[0])});
}

template <class T>
void patch(std::vector<std::uint8_t>& b, std::size_t at, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    b[at + i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(value) >> (8 * i));
}

bool bits_equal(const matrix_view& a, const matrix_view& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         (a.bytes() == 0 || std::memcmp(a.data(), b.data(), a.bytes()) == 0);
}

}  // namespace

TEST_CASE("every message type survives a header round trip") {
  core::rng r(1);
  for (msg_type type : all_types) {
    CAPTURE(to_string(type));
    const message m = sample(type, r);
    const auto d = descriptors_for(m);
    const auto bytes = encode_header(m, d);
    CHECK(bytes.size() <= max_message_bytes);
    const wire_header h = decode_header(bytes.data(), bytes.size());
    CHECK(h.msg.version == protocol_version);
    CHECK(h.msg.type == type);
    CHECK(h.msg.sender == m.sender);
    CHECK(h.msg.receiver == m.receiver);
    CHECK(h.msg.iteration == m.iteration);
    CHECK(h.msg.batch == m.batch);
    CHECK(h.msg.count == m.count);
    CHECK(h.msg.flags == m.flags);
    CHECK(h.msg.text == m.text);
    CHECK(h.msg.payloads.empty());
    REQUIRE(h.payloads.size() == d.size());
    for (std::size_t i = 0; i < d.size(); ++i) {
      CHECK(h.payloads[i].kind == d[i].kind);
      CHECK(h.payloads[i].layer == d[i].layer);
      CHECK(h.payloads[i].segment == d[i].segment);
      CHECK(h.payloads[i].offset == d[i].offset);
      CHECK(h.payloads[i].rows == d[i].rows);
      CHECK(h.payloads[i].cols == d[i].cols);
      CHECK(h.payloads[i].generation == d[i].generation);
    }
  }
}

TEST_CASE("the header layout is little-endian and stable") {
  const auto b = one_payload_header();
  REQUIRE(b.size() == 95);
  CHECK(b[0] == 1);                                      // cereal's little-endian flag
  CHECK(std::memcmp(b.data() + 1, "RADM", 4) == 0);      // magic
  CHECK(b[5] == protocol_version);
  CHECK(b[9] == static_cast<std::uint8_t>(msg_type::tick));
  CHECK(b[54] == static_cast<std::uint8_t>(payload_kind::V));
  CHECK(b[71] == 2);  // rows
  CHECK(b[79] == 3);  // cols
}

TEST_CASE("frames with matrix bytes round-trip bit for bit") {
  core::rng r(2);
  for (msg_type type : all_types) {
    message m = sample(type, r);
    core::mat odd(2, 3);
    odd << 0.0, -0.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(),
        std::numeric_limits<double>::denorm_min(), -1e308;
    m.payloads.push_back({payload_kind::metrics, 0, matrix_view(std::move(odd))});
    m.payloads.push_back({payload_kind::batch_columns, 2, matrix_view(core::mat(0, 5))});
    const auto frame = encode_with_bytes(m);
    const message back = decode_with_bytes(frame.data(), frame.size());
    CHECK(back.type == type);
    CHECK(back.text == m.text);
    REQUIRE(back.payloads.size() == m.payloads.size());
    for (std::size_t i = 0; i < m.payloads.size(); ++i) {
      CHECK(back.payloads[i].kind == m.payloads[i].kind);
      CHECK(back.payloads[i].layer == m.payloads[i].layer);
      CHECK(bits_equal(back.payloads[i].matrix, m.payloads[i].matrix));
    }
    CHECK(back.find(payload_kind::batch_columns)->matrix.cols() == 5);
  }
}

TEST_CASE("a header over max_message_bytes is refused on encode and on decode") {
  message m;
  m.type = msg_type::init;
  m.text.assign(max_message_bytes, 'x');
  CHECK_THROWS_WITH_AS(encode_header(m, {}), doctest::Contains("max_message_bytes"), protocol_error);
  std::vector<std::uint8_t> big(max_message_bytes + 1, 0);
  CHECK_THROWS_WITH_AS(decode_header(big.data(), big.size()), doctest::Contains("max_message_bytes"),
                       protocol_error);
  m.text.assign(max_message_bytes - 200, 'x');  // fits with the fixed fields
  CHECK_NOTHROW(encode_header(m, {}));
}

TEST_CASE("a message decode would refuse is refused at the sender") {
  message m;  // type left at its default, 0
  CHECK_THROWS_WITH_AS(encode_header(m, {}), doctest::Contains("invalid message type"), protocol_error);
  m.type = msg_type::tick;
  m.receiver = -1;
  CHECK_THROWS_AS(encode_header(m, {}), protocol_error);
  m.receiver = 1;
  m.payloads.push_back({payload_kind{}, 1, matrix_view(core::mat::Zero(1, 1))});
  CHECK_THROWS_WITH_AS(encode_header(m, {describe(m.payloads[0])}), doctest::Contains("kind"), protocol_error);
  CHECK_THROWS_AS(encode_header(m, {}), std::invalid_argument);
}

TEST_CASE("a wrong version or magic is refused") {
  message m;
  m.type = msg_type::hello;
  m.version = protocol_version + 1;
  auto b = encode_header(m, {});
  CHECK_THROWS_WITH_AS(decode_header(b.data(), b.size()), doctest::Contains("version"), protocol_error);
  b = one_payload_header();
  b[1] ^= 0xff;
  CHECK_THROWS_WITH_AS(decode_header(b.data(), b.size()), doctest::Contains("magic"), protocol_error);
  b = one_payload_header();
  b[0] = 7;
  CHECK_THROWS_AS(decode_header(b.data(), b.size()), protocol_error);
}

TEST_CASE("every truncation of a header and of a frame is refused") {
  const auto b = one_payload_header();
  for (std::size_t n = 0; n < b.size(); ++n) CHECK_THROWS_AS(decode_header(b.data(), n), protocol_error);
  auto longer = b;
  longer.push_back(0);
  CHECK_THROWS_WITH_AS(decode_header(longer.data(), longer.size()), doctest::Contains("trailing"),
                       protocol_error);

  core::rng r(3);
  const auto frame = encode_with_bytes(sample(msg_type::sync, r));
  for (std::size_t n = 0; n < frame.size(); ++n)
    CHECK_THROWS_AS(decode_with_bytes(frame.data(), n), protocol_error);
  auto padded = frame;
  padded.push_back(0);
  CHECK_THROWS_AS(decode_with_bytes(padded.data(), padded.size()), protocol_error);
}

TEST_CASE("unknown enum values are refused") {
  for (std::uint8_t t : {0, 11, 255}) {
    auto b = one_payload_header();
    b[9] = t;
    CHECK_THROWS_WITH_AS(decode_header(b.data(), b.size()), doctest::Contains("message type"),
                         protocol_error);
  }
  for (std::uint8_t k : {0, 13, 200}) {
    auto b = one_payload_header();
    b[54] = k;
    CHECK_THROWS_WITH_AS(decode_header(b.data(), b.size()), doctest::Contains("kind"), protocol_error);
  }
}

TEST_CASE("negative, overflowing and oversized shapes and counts are refused") {
  auto b = one_payload_header();
  patch<std::int64_t>(b, 71, -1);
  CHECK_THROWS_WITH_AS(decode_header(b.data(), b.size()), doctest::Contains("negative"), protocol_error);
  b = one_payload_header();
  patch<std::int64_t>(b, 71, std::int64_t{1} << 40);
  patch<std::int64_t>(b, 79, std::int64_t{1} << 40);
  CHECK_THROWS_WITH_AS(decode_header(b.data(), b.size()), doctest::Contains("overflows"), protocol_error);
  b = one_payload_header();
  patch<std::int64_t>(b, 71, std::numeric_limits<std::int64_t>::max() / 8);
  patch<std::int64_t>(b, 79, 2);
  CHECK_THROWS_AS(decode_header(b.data(), b.size()), protocol_error);
  b = one_payload_header();
  patch<std::uint32_t>(b, 50, 1000000);  // payload count
  CHECK_THROWS_WITH_AS(decode_header(b.data(), b.size()), doctest::Contains("payloads"), protocol_error);
  b = one_payload_header();
  patch<std::uint32_t>(b, 46, 0xffffffffu);  // text length
  CHECK_THROWS_WITH_AS(decode_header(b.data(), b.size()), doctest::Contains("text"), protocol_error);
  b = one_payload_header();
  patch<std::int32_t>(b, 10, -5);  // sender
  CHECK_THROWS_WITH_AS(decode_header(b.data(), b.size()), doctest::Contains("node id"), protocol_error);

  // A frame whose matrix would need more bytes than the frame holds.
  message m;
  m.type = msg_type::tick;
  m.payloads.push_back({payload_kind::V, 1, matrix_view(core::mat::Ones(2, 2))});
  auto frame = encode_with_bytes(m);
  patch<std::int64_t>(frame, frame_prefix_bytes + 71, 1 << 20);
  CHECK_THROWS_WITH_AS(decode_with_bytes(frame.data(), frame.size()), doctest::Contains("bytes"),
                       protocol_error);
}

TEST_CASE("random garbage is refused without a crash") {
  core::rng r(4);
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::uint8_t> b(r.below(200));
    for (auto& x : b) x = static_cast<std::uint8_t>(r.below(256));
    if (!b.empty() && r.below(2)) b[0] = 1;  // get past the first check sometimes
    CHECK_THROWS_AS(decode_header(b.data(), b.size()), protocol_error);
  }
}

TEST_CASE("mutated headers and frames either decode or throw protocol_error (seeded fuzz)") {
  const std::uint64_t seed = 20240611;
  INFO("seed " << seed);
  core::rng r(seed);
  std::vector<std::vector<std::uint8_t>> headers, frames;
  for (msg_type type : all_types) {
    const message m = sample(type, r);
    headers.push_back(encode_header(m, descriptors_for(m)));
    frames.push_back(encode_with_bytes(m));
  }
  headers.push_back(one_payload_header());

  auto mutate = [&](std::vector<std::uint8_t> b) {
    const auto edits = 1 + r.below(4);
    for (std::uint64_t e = 0; e < edits && !b.empty(); ++e) {
      const auto at = static_cast<std::size_t>(r.below(b.size()));
      switch (r.below(5)) {
        case 0: b[at] ^= static_cast<std::uint8_t>(1u << r.below(8)); break;
        case 1: b[at] = static_cast<std::uint8_t>(r.below(256)); break;
        case 2: b[at] = std::vector<std::uint8_t>{0x00, 0x7f, 0x80, 0xff}[r.below(4)]; break;
        case 3: b.resize(at); break;
        default: b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(r.below(256))); break;
      }
    }
    return b;
  };

  int decoded = 0, refused = 0, other = 0;
  for (int i = 0; i < 20000; ++i) {
    const bool frame = i % 4 == 0;
    const auto& base = frame ? frames[r.below(frames.size())] : headers[r.below(headers.size())];
    const auto b = mutate(base);
    try {
      if (frame) (void)decode_with_bytes(b.data(), b.size());
      else (void)decode_header(b.data(), b.size());
      ++decoded;
    } catch (const protocol_error&) {
      ++refused;
    } catch (...) {
      ++other;
    }
  }
  MESSAGE("fuzz: " << decoded << " decoded, " << refused << " refused");
  CHECK(other == 0);
  CHECK(refused > 10000);
  CHECK(decoded > 0);  // flips in payload values and counters decode fine
}
