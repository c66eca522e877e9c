#include "protocol/trace.hpp"

#include <cereal/archives/portable_binary.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <istream>
#include <limits>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace radmm::protocol {
namespace {

constexpr char file_magic[8] = {'r', 'a', 'd', 'm', 'm', 't', 'r', 'c'};
constexpr std::size_t file_header_bytes = 16;
constexpr std::size_t record_prefix_bytes = 12;
constexpr std::uint32_t length_guard = 0xA5C3E1F0u;
// Write out when the buffer holds this much, or when this long has passed.
constexpr std::size_t flush_bytes = 64 * 1024;
constexpr std::int64_t flush_interval_ns = 50'000'000;
// Node ids above this are refused by the reader, so tools can index by node.
constexpr std::int32_t max_trace_node = 65535;

// Slicing-by-8 tables: table[0] is the classic byte table; table[k] advances a
// byte through k more zero bytes, so eight bytes are folded per step.
struct crc_tables {
  std::uint32_t t[8][256];
  crc_tables() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i)
      for (int k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFFu];
  }
};
const crc_tables crc_table;  // built before main: no guard on the hot path

void put_u32(std::uint8_t* at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get_u32(const std::uint8_t* at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(at[i]) << (8 * i);
  return v;
}

std::array<std::uint8_t, file_header_bytes> file_header() {
  std::array<std::uint8_t, file_header_bytes> h{};
  std::memcpy(h.data(), file_magic, 8);
  put_u32(h.data() + 8, trace_format_version);
  put_u32(h.data() + 12, crc32(h.data(), 12));
  return h;
}

// Appends to a byte vector that the writer owns.
class vector_sink : public std::streambuf {
 public:
  std::vector<std::uint8_t> bytes;

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    const std::size_t at = bytes.size();
    bytes.resize(at + static_cast<std::size_t>(n));
    std::memcpy(bytes.data() + at, s, static_cast<std::size_t>(n));
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) bytes.push_back(static_cast<std::uint8_t>(c));
    return traits_type::not_eof(c);
  }
};

// Reads one record body at a time; knows how much is left so that sizes read
// from the input are checked before anything is allocated for them.
class memory_source : public std::streambuf {
 public:
  void reset(const std::uint8_t* data, std::size_t size) {
    char* begin = const_cast<char*>(reinterpret_cast<const char*>(data));  // get area only: never written
    setg(begin, begin, begin + size);
  }
  std::size_t remaining() const { return static_cast<std::size_t>(egptr() - gptr()); }
};

std::string read_small_file(const char* path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

std::int64_t system_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void write_all(int fd, const std::uint8_t* data, std::size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw io_error("trace " + path + ": write failed: " + std::strerror(errno));
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

int open_for_writing(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw io_error("trace " + path + ": cannot create the file: " + std::strerror(errno));
  return fd;
}

}  // namespace

std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc) {
  const auto& t = crc_table.t;
  const auto* p = static_cast<const std::uint8_t*>(data);
  crc = ~crc;
  while (size >= 8) {
    const std::uint32_t lo = (static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                              static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24) ^ crc;
    crc = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
          t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    size -= 8;
  }
  while (size-- > 0) crc = t[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

const char* to_string(span_block b) {
  switch (b) {
    case span_block::other: return "other";
    case span_block::W: return "W";
    case span_block::U: return "U";
    case span_block::V: return "V";
    case span_block::Lambda: return "Lambda";
    case span_block::forward: return "forward";
  }
  return "other";
}

span_block parse_span_block(const char* name) {
  if (name == nullptr) return span_block::other;
  for (span_block b : {span_block::W, span_block::U, span_block::V, span_block::Lambda, span_block::forward})
    if (std::strcmp(name, to_string(b)) == 0) return b;
  return span_block::other;
}

// ---- Writer ----

struct trace_writer::encoder {
  vector_sink sink;
  std::ostream os{&sink};
  cereal::PortableBinaryOutputArchive ar{os, cereal::PortableBinaryOutputArchive::Options::LittleEndian()};
  encoder() { sink.bytes.clear(); }  // drop cereal's byte-order flag: the format fixes little-endian

  void str(const std::string& s) {
    ar(static_cast<std::uint32_t>(s.size()));
    if (!s.empty()) ar(cereal::binary_data(s.data(), s.size()));
  }
};

std::int64_t trace_writer::now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

trace_writer::trace_writer(const std::string& path, const trace_options& opt)
    : path_(path), opt_(opt), enc_(std::make_unique<encoder>()) {
  fd_ = open_for_writing(path);
  const auto h = file_header();
  enc_->sink.bytes.insert(enc_->sink.bytes.end(), h.begin(), h.end());
  std::lock_guard<std::mutex> lock(mutex_);
  begin_record(static_cast<std::uint8_t>(trace_record_kind::stream));
  auto& ar = enc_->ar;
  ar(trace_format_version, protocol_version, opt_.node, opt_.layers, static_cast<std::int64_t>(getpid()));
  ar(now_ns(), system_now_ns(), static_cast<std::uint8_t>(opt_.payloads ? 1 : 0));
  enc_->str(read_small_file("/proc/sys/kernel/random/boot_id"));
  enc_->str(host_name());
  enc_->str(opt_.description);
  end_record(true, now_ns());
  if (!error_.empty()) {
    ::close(fd_);
    fd_ = -1;
    throw io_error(error_);
  }
}

trace_writer::~trace_writer() {
  try {
    close();
  } catch (...) {
    // A destructor cannot report; close() explicitly to see write errors.
  }
}

void trace_writer::begin_record(std::uint8_t kind) {
  auto& b = enc_->sink.bytes;
  record_start_ = b.size();
  b.resize(b.size() + record_prefix_bytes);
  enc_->ar(kind);
}

void trace_writer::end_record(bool flush_now, std::int64_t now) {
  auto& b = enc_->sink.bytes;
  const std::size_t body = record_start_ + record_prefix_bytes;
  const auto len = static_cast<std::uint32_t>(b.size() - body);
  put_u32(b.data() + record_start_, len);
  put_u32(b.data() + record_start_ + 4, len ^ length_guard);
  put_u32(b.data() + record_start_ + 8, crc32(b.data() + body, len));
  ++records_;
  if (flush_now || b.size() >= flush_bytes || now - last_flush_ns_ > flush_interval_ns) {
    write_out();
    last_flush_ns_ = now;
  }
}

void trace_writer::write_out() {
  auto& b = enc_->sink.bytes;
  if (fd_ >= 0 && error_.empty() && !b.empty()) {
    try {
      write_all(fd_, b.data(), b.size(), path_);
    } catch (const io_error& e) {
      error_ = e.what();  // reported by close(); a trace failure does not stop the run
    }
  }
  b.clear();
}

void trace_writer::message_sent(const message& m, std::uint64_t channel_seq, std::int64_t t_begin,
                                std::int64_t t_end) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fd_ < 0) return;
  begin_record(static_cast<std::uint8_t>(trace_record_kind::send));
  auto& ar = enc_->ar;
  ar(channel_seq, t_begin, t_end, m.version, static_cast<std::uint8_t>(m.type), m.sender, m.receiver);
  ar(m.iteration, m.batch, m.count, m.flags);
  enc_->str(m.text);
  ar(static_cast<std::uint32_t>(m.payloads.size()));
  for (const payload& p : m.payloads) {
    const bool with_data = opt_.payloads && !p.matrix.empty();
    ar(static_cast<std::uint8_t>(p.kind), p.layer, static_cast<std::int64_t>(p.matrix.rows()),
       static_cast<std::int64_t>(p.matrix.cols()), static_cast<std::uint8_t>(with_data ? 1 : 0));
    if (with_data) ar(cereal::binary_data(p.matrix.data(), p.matrix.bytes()));
  }
  const bool important = m.type == msg_type::sync || m.type == msg_type::quit || m.type == msg_type::bye ||
                         m.type == msg_type::error;
  end_record(important, t_end);
}

void trace_writer::message_received(const message& m, std::uint64_t channel_seq, std::int64_t t_wait,
                                    std::int64_t t_return) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fd_ < 0) return;
  begin_record(static_cast<std::uint8_t>(trace_record_kind::receive));
  enc_->ar(channel_seq, t_wait, t_return, m.version, static_cast<std::uint8_t>(m.type), m.sender, m.receiver,
           m.iteration, m.batch);
  end_record(m.type == msg_type::quit || m.type == msg_type::error, t_return);
}

void trace_writer::span(node_id node, span_block block, std::uint8_t depth, std::int64_t iteration,
                        std::int64_t t_begin, std::int64_t t_end) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fd_ < 0) return;
  begin_record(static_cast<std::uint8_t>(trace_record_kind::span));
  enc_->ar(node, static_cast<std::uint8_t>(block), depth, iteration, t_begin, t_end);
  end_record(false, t_end);
}

std::function<void(const char*, bool)> trace_writer::span_observer(node_id node, std::function<long()> iteration) {
  struct open_span {
    span_block block;
    std::int64_t k, t0;
  };
  auto stack = std::make_shared<std::vector<open_span>>();
  return [this, node, iteration = std::move(iteration), stack](const char* block, bool begin) {
    const std::int64_t t = now_ns();
    if (begin) {
      stack->push_back({parse_span_block(block), iteration ? static_cast<std::int64_t>(iteration()) : -1, t});
      return;
    }
    if (stack->empty()) return;  // an end without a begin: nothing to pair it with
    const open_span s = stack->back();
    stack->pop_back();
    span(node, s.block, static_cast<std::uint8_t>(std::min<std::size_t>(stack->size(), 255)), s.k, s.t0, t);
  };
}

void trace_writer::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  write_out();
}

void trace_writer::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fd_ < 0) return;
  begin_record(static_cast<std::uint8_t>(trace_record_kind::end));
  const std::int64_t now = now_ns();
  enc_->ar(now, records_);
  end_record(true, now);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0 && error_.empty()) error_ = "trace " + path_ + ": close failed: " + std::strerror(errno);
  if (!error_.empty()) throw io_error(error_);
}

// ---- Recording transport ----

recording_transport::recording_transport(std::unique_ptr<transport> inner, std::shared_ptr<trace_writer> writer)
    : owned_(std::move(inner)), inner_(owned_.get()), writer_(std::move(writer)) {
  if (!inner_ || !writer_) throw std::invalid_argument("recording_transport: null transport or writer");
}

recording_transport::recording_transport(transport& inner, std::shared_ptr<trace_writer> writer)
    : inner_(&inner), writer_(std::move(writer)) {
  if (!writer_) throw std::invalid_argument("recording_transport: null writer");
}

std::uint64_t recording_transport::next_seq(std::vector<std::uint64_t>& counters, node_id peer) {
  const auto i = static_cast<std::size_t>(std::max(peer, 0));
  if (counters.size() <= i) counters.resize(i + 1, 0);
  return counters[i]++;
}

void recording_transport::send(const message& m) {
  const std::int64_t t0 = trace_writer::now_ns();
  inner_->send(m);  // a send that throws was not delivered: nothing to record
  const std::int64_t t1 = trace_writer::now_ns();
  std::uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    seq = next_seq(sent_, m.receiver);
  }
  writer_->message_sent(m, seq, t0, t1);
}

std::optional<message> recording_transport::receive(std::chrono::milliseconds wait) {
  const std::int64_t t_call = trace_writer::now_ns();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!waiting_since_) waiting_since_ = t_call;
  }
  std::optional<message> m = inner_->receive(wait);
  if (!m) return m;
  const std::int64_t t_return = trace_writer::now_ns();
  std::uint64_t seq;
  std::int64_t t_wait;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    seq = next_seq(received_, m->sender);
    t_wait = waiting_since_.value_or(t_call);
    waiting_since_.reset();
  }
  writer_->message_received(*m, seq, t_wait, t_return);
  return m;
}

std::unique_ptr<transport> record_if(const std::shared_ptr<trace_writer>& writer, std::unique_ptr<transport> t) {
  if (!writer) return t;
  return std::make_unique<recording_transport>(std::move(t), writer);
}

std::string trace_part_path(const std::string& path, node_id node) { return path + ".part" + std::to_string(node); }

// ---- Reading ----

namespace {

[[noreturn]] void bad(std::uint64_t offset, const std::string& what) {
  throw trace_error("byte " + std::to_string(offset) + ": " + what);
}

// Checks the file header; returns nothing or throws trace_error.
void check_file_header(const std::uint8_t* p, std::size_t size) {
  if (size < 8 || std::memcmp(p, file_magic, 8) != 0)
    throw trace_error("not a radmm trace (the file does not start with \"radmmtrc\")");
  if (size < file_header_bytes) throw trace_error("truncated trace: the 16-byte file header is incomplete");
  const std::uint32_t version = get_u32(p + 8);
  if (get_u32(p + 12) != crc32(p, 12)) throw trace_error("corrupt trace: the file header fails its checksum");
  if (version != trace_format_version)
    throw trace_error("trace format version " + std::to_string(version) + "; this build reads version " +
                      std::to_string(trace_format_version));
}

struct raw_record {
  std::size_t offset;  // of the prefix
  const std::uint8_t* body;
  std::size_t size;
};

// Splits the records after the header. Stops at a truncated final record
// (reported in `truncation`); throws trace_error on anything else wrong.
template <class F>
void scan_records(const std::uint8_t* p, std::size_t size, bool verify, std::string& truncation, F&& on_record) {
  std::size_t at = file_header_bytes;
  while (at < size) {
    const std::size_t left = size - at;
    if (left < record_prefix_bytes) {
      truncation = "the final record at byte " + std::to_string(at) + " is cut off (" + std::to_string(left) +
                   " of its 12 prefix bytes present)";
      return;
    }
    const std::uint32_t len = get_u32(p + at);
    if ((len ^ length_guard) != get_u32(p + at + 4))
      bad(at, "corrupt trace: a record's length field fails its check");
    if (len == 0 || len > max_trace_record_bytes) bad(at, "corrupt trace: record length " + std::to_string(len));
    if (len > left - record_prefix_bytes) {
      truncation = "the final record at byte " + std::to_string(at) + " is cut off (" +
                   std::to_string(left - record_prefix_bytes) + " of " + std::to_string(len) + " bytes present)";
      return;
    }
    const std::uint8_t* body = p + at + record_prefix_bytes;
    if (verify && crc32(body, len) != get_u32(p + at + 8))
      bad(at, "corrupt trace: a record fails its checksum");
    on_record(raw_record{at, body, len});
    at += record_prefix_bytes + len;
  }
}

class record_decoder {
 public:
  record_decoder() : is_(&src_), ar_(init(is_, src_)) {}

  void reset(const raw_record& r) {
    src_.reset(r.body, r.size);
    offset_ = r.offset;
  }
  std::size_t remaining() const { return src_.remaining(); }
  std::uint64_t offset() const { return offset_; }

  template <class... T>
  void operator()(T&&... v) {
    ar_(std::forward<T>(v)...);
  }

  std::string str(const char* what) {
    std::uint32_t n = 0;
    ar_(n);
    if (n > remaining()) bad(offset_, std::string("corrupt trace: ") + what + " longer than its record");
    std::string s(n, '\0');
    if (n > 0) ar_(cereal::binary_data(s.data(), n));
    return s;
  }

 private:
  // cereal's portable archive reads a byte-order flag on construction; the
  // format fixes little-endian, so it reads a constant one.
  static std::istream& init(std::istream& is, memory_source& src) {
    static const std::uint8_t little = 1;
    src.reset(&little, 1);
    return is;
  }

  memory_source src_;
  std::istream is_;
  cereal::PortableBinaryInputArchive ar_;
  std::uint64_t offset_ = 0;
};

bool valid_type(std::uint8_t t) {
  return t >= static_cast<std::uint8_t>(msg_type::hello) && t <= static_cast<std::uint8_t>(msg_type::error);
}
bool valid_kind(std::uint8_t k) {
  return k >= static_cast<std::uint8_t>(payload_kind::W) && k <= static_cast<std::uint8_t>(payload_kind::metrics);
}

void check_node(record_decoder& d, std::int32_t v, const char* what) {
  if (v < 0 || v > max_trace_node) bad(d.offset(), std::string("corrupt trace: ") + what + " " + std::to_string(v));
}

void decode_record(record_decoder& d, trace_data& out) {
  std::uint8_t kind = 0;
  d(kind);
  if (kind != static_cast<std::uint8_t>(trace_record_kind::stream) && out.streams.empty())
    bad(d.offset(), "corrupt trace: a record before the first stream start");
  const std::size_t stream = out.streams.empty() ? 0 : out.streams.size() - 1;
  switch (static_cast<trace_record_kind>(kind)) {
    case trace_record_kind::stream: {
      trace_stream s;
      std::uint8_t payloads = 0;
      d(s.format_version, s.protocol_version, s.node, s.layers, s.pid, s.steady_ns, s.system_ns, payloads);
      if (s.format_version != trace_format_version)
        bad(d.offset(), "a stream of trace format version " + std::to_string(s.format_version) +
                            "; this build reads version " + std::to_string(trace_format_version));
      if (s.node < -1 || s.node > max_trace_node) bad(d.offset(), "corrupt trace: stream node " + std::to_string(s.node));
      if (s.layers < 0 || s.layers > max_trace_node)
        bad(d.offset(), "corrupt trace: stream with " + std::to_string(s.layers) + " layers");
      if (payloads > 1) bad(d.offset(), "corrupt trace: bad payload flag");
      s.payloads = payloads == 1;
      s.boot_id = d.str("boot id");
      s.host = d.str("host name");
      s.description = d.str("description");
      s.records = 1;
      out.streams.push_back(std::move(s));
      break;
    }
    case trace_record_kind::send: {
      trace_send s;
      s.stream = stream;
      std::uint8_t type = 0;
      d(s.channel_seq, s.t_begin, s.t_end, s.version, type, s.sender, s.receiver);
      if (!valid_type(type)) bad(d.offset(), "corrupt trace: unknown message type " + std::to_string(type));
      s.type = static_cast<msg_type>(type);
      check_node(d, s.sender, "sender");
      check_node(d, s.receiver, "receiver");
      d(s.iteration, s.batch, s.count, s.flags);
      s.text = d.str("message text");
      std::uint32_t n = 0;
      d(n);
      // Each payload descriptor takes at least 22 bytes: bounds n before allocating.
      if (n > d.remaining() / 22) bad(d.offset(), "corrupt trace: " + std::to_string(n) + " payloads cannot fit");
      s.payloads.resize(n);
      for (auto& p : s.payloads) {
        std::uint8_t k = 0, has = 0;
        d(k, p.layer, p.rows, p.cols, has);
        if (!valid_kind(k)) bad(d.offset(), "corrupt trace: unknown payload kind " + std::to_string(k));
        p.kind = static_cast<payload_kind>(k);
        if (p.rows < 0 || p.cols < 0 || p.layer < 0 || has > 1)
          bad(d.offset(), "corrupt trace: bad payload descriptor");
        const std::size_t max_doubles = d.remaining() / sizeof(double);
        const bool fits = p.cols == 0 || static_cast<std::uint64_t>(p.rows) <=
                                             std::numeric_limits<std::uint64_t>::max() / 8 /
                                                 static_cast<std::uint64_t>(p.cols);
        if (!fits) bad(d.offset(), "corrupt trace: payload shape overflows");
        if (has == 1) {
          if (static_cast<std::uint64_t>(p.rows) * static_cast<std::uint64_t>(p.cols) > max_doubles)
            bad(d.offset(), "corrupt trace: payload bytes longer than their record");
          auto m = std::make_shared<core::mat>(p.rows, p.cols);
          if (m->size() > 0) d(cereal::binary_data(m->data(), static_cast<std::size_t>(m->size()) * sizeof(double)));
          p.data = std::move(m);
        }
      }
      out.order.emplace_back(trace_record_kind::send, out.sends.size());
      out.sends.push_back(std::move(s));
      break;
    }
    case trace_record_kind::receive: {
      trace_receive r;
      r.stream = stream;
      std::uint8_t type = 0;
      d(r.channel_seq, r.t_wait, r.t_return, r.version, type, r.sender, r.receiver, r.iteration, r.batch);
      if (!valid_type(type)) bad(d.offset(), "corrupt trace: unknown message type " + std::to_string(type));
      r.type = static_cast<msg_type>(type);
      check_node(d, r.sender, "sender");
      check_node(d, r.receiver, "receiver");
      out.order.emplace_back(trace_record_kind::receive, out.receives.size());
      out.receives.push_back(r);
      break;
    }
    case trace_record_kind::span: {
      trace_span_record s;
      s.stream = stream;
      std::uint8_t block = 0;
      d(s.node, block, s.depth, s.iteration, s.t_begin, s.t_end);
      check_node(d, s.node, "span node");
      if (block > static_cast<std::uint8_t>(span_block::forward))
        bad(d.offset(), "corrupt trace: unknown span block " + std::to_string(block));
      s.block = static_cast<span_block>(block);
      out.order.emplace_back(trace_record_kind::span, out.spans.size());
      out.spans.push_back(s);
      break;
    }
    case trace_record_kind::end: {
      std::int64_t t = 0;
      std::uint64_t n = 0;
      d(t, n);
      out.streams.back().ended = true;
      break;
    }
    default:
      bad(d.offset(), "unknown record kind " + std::to_string(kind) + " (written by a newer radmm?)");
  }
  if (d.remaining() != 0) bad(d.offset(), "corrupt trace: " + std::to_string(d.remaining()) + " unread bytes in a record");
  out.streams.back().records += kind == static_cast<std::uint8_t>(trace_record_kind::stream) ? 0 : 1;
}

std::vector<std::uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw trace_error("cannot open " + path + ": " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw trace_error("cannot read " + path);
  in.seekg(0);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) throw trace_error("cannot read " + path);
  return bytes;
}

}  // namespace

trace_data read_trace(const void* data, std::size_t size, const trace_read_options& opt) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  if (p == nullptr && size > 0) throw trace_error("null input");
  check_file_header(p, size);
  trace_data out;
  out.file_bytes = size;
  record_decoder dec;
  scan_records(p, size, opt.verify_checksums, out.truncation, [&](const raw_record& r) {
    dec.reset(r);
    try {
      decode_record(dec, out);
    } catch (const trace_error&) {
      throw;
    } catch (const std::exception& e) {
      // cereal's short reads and anything else: the record is malformed.
      bad(r.offset, std::string("corrupt trace: malformed record (") + e.what() + ")");
    }
  });
  out.truncated = !out.truncation.empty();
  if (out.streams.empty() && !out.truncated) throw trace_error("empty trace: no stream start after the header");
  return out;
}

trace_data read_trace_file(const std::string& path, const trace_read_options& opt) {
  const std::vector<std::uint8_t> bytes = slurp(path);
  try {
    return read_trace(bytes.data(), bytes.size(), opt);
  } catch (const trace_error& e) {
    throw trace_error(path + ": " + e.what());
  }
}

std::vector<std::string> merge_trace_files(const std::string& out, const std::vector<std::string>& parts,
                                           bool remove_parts) {
  std::vector<std::string> notes;
  std::vector<std::uint8_t> merged;
  const auto h = file_header();
  merged.insert(merged.end(), h.begin(), h.end());
  for (const std::string& part : parts) {
    struct stat st {};
    if (::stat(part.c_str(), &st) != 0) {
      notes.push_back(part + ": missing, skipped");
      continue;
    }
    const std::vector<std::uint8_t> bytes = slurp(part);
    std::string truncation;
    try {
      check_file_header(bytes.data(), bytes.size());
      scan_records(bytes.data(), bytes.size(), true, truncation, [&](const raw_record& r) {
        const std::uint8_t* from = bytes.data() + r.offset;
        merged.insert(merged.end(), from, from + record_prefix_bytes + r.size);
      });
    } catch (const trace_error& e) {
      // A part cut off inside its header (a process killed at once) holds nothing.
      if (bytes.size() < file_header_bytes &&
          std::memcmp(bytes.data(), file_magic, std::min<std::size_t>(bytes.size(), 8)) == 0) {
        notes.push_back(part + ": empty, skipped");
        continue;
      }
      throw trace_error(part + ": " + e.what());
    }
    if (!truncation.empty()) notes.push_back(part + ": " + truncation + "; kept the readable prefix");
  }
  const int fd = open_for_writing(out);
  try {
    write_all(fd, merged.data(), merged.size(), out);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) throw io_error("trace " + out + ": close failed: " + std::strerror(errno));
  if (remove_parts)
    for (const std::string& part : parts) std::remove(part.c_str());
  return notes;
}

std::vector<std::string> merge_trace_parts(const std::string& path, int layers) {
  std::vector<std::string> parts;
  for (int n = 0; n <= layers; ++n) parts.push_back(trace_part_path(path, n));
  return merge_trace_files(path, parts, true);
}

}  // namespace radmm::protocol
