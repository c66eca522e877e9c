#pragma once
// Protocol traces: what a parallel run did, message by message, for
// `radmm-trace` to check, replay, draw and simulate.
//
// Recording. Each process holds one `trace_writer` (one file). A
// `recording_transport` wraps any transport endpoint and records every message
// it sends and receives; `trace_writer::span_observer` plugs into
// worker::layer_machine::set_span_observer and records the compute spans (W, U,
// V, Lambda, forward). With `payloads`, sent messages carry their matrix bytes,
// so a run can be re-executed from its trace. A multi-process run writes one
// part per process (`trace_part_path`) and joins them with `merge_trace_files`.
//
// Matching. Transports are FIFO per (sender, receiver), so the n-th message that
// B receives from A is the n-th that A sent to B: both sides record the channel
// sequence number n, and the reader pairs sends with receives on (A, B, n).
//
// Clocks. Times are std::chrono::steady_clock nanoseconds of the writing
// process. Each stream starts with a (steady, system) clock pair and the host's
// boot id: streams of one boot share the steady clock and are aligned on it
// directly; otherwise through the system clock.
//
// File format (version 1), little-endian throughout:
//   header  : 8 bytes "radmmtrc", u32 format version, u32 CRC-32 of those 12 bytes
//   records : u32 body length, u32 (length ^ 0xA5C3E1F0), u32 CRC-32 of the body,
//             then the body: cereal portable-binary fields (little-endian,
//             without cereal's leading byte-order flag), starting with a u8 kind.
// Kinds: 1 stream start, 2 send, 3 receive, 4 span, 5 stream end. A merged file
// is the header followed by the records of each part, each part starting with
// its stream-start record. Records are written in small batches (and at every
// SYNC, QUIT, BYE or ERROR), so a crashed process leaves a readable prefix; the
// reader accepts a truncated final record (and says so) but rejects anything
// else that does not check out (trace_error).
#include "protocol/transport.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace radmm::protocol {

inline constexpr std::uint32_t trace_format_version = 1;
// Largest record body the reader accepts (a payload-carrying INIT can be large).
inline constexpr std::size_t max_trace_record_bytes = std::size_t{1} << 30;

// A file that is not a trace, has another format version, or is corrupt.
struct trace_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Compute spans the layer machine reports (layer_machine::set_span_observer).
enum class span_block : std::uint8_t { other = 0, W = 1, U = 2, V = 3, Lambda = 4, forward = 5 };
const char* to_string(span_block b);
span_block parse_span_block(const char* name);

struct trace_options {
  bool payloads = false;    // store matrix bytes of every sent message
  std::int32_t node = -1;   // the process's node; -1: several (an in-process run)
  std::int32_t layers = 0;  // N, when known
  std::string description;  // free text shown by `radmm-trace info`
};

// One trace stream (file) per process. Thread-safe: the endpoints and machines
// of an in-process run share one writer.
class trace_writer {
 public:
  // Creates (truncates) `path` and writes the header and the stream start.
  // Throws io_error when the file cannot be written.
  trace_writer(const std::string& path, const trace_options& opt);
  // Writes the stream end and flushes; errors are swallowed (see close()).
  ~trace_writer();
  trace_writer(const trace_writer&) = delete;
  trace_writer& operator=(const trace_writer&) = delete;

  const trace_options& options() const { return opt_; }
  const std::string& path() const { return path_; }

  // Times are steady_clock nanoseconds (now_ns()).
  void message_sent(const message& m, std::uint64_t channel_seq, std::int64_t t_begin, std::int64_t t_end);
  // t_wait: when the receiving node started waiting for this message.
  void message_received(const message& m, std::uint64_t channel_seq, std::int64_t t_wait, std::int64_t t_return);
  void span(node_id node, span_block block, std::uint8_t depth, std::int64_t iteration, std::int64_t t_begin,
            std::int64_t t_end);

  // An observer for layer_machine::set_span_observer. `iteration` is read at the
  // start of each span (the machine's k). Keeps a stack, since spans nest.
  std::function<void(const char*, bool)> span_observer(node_id node, std::function<long()> iteration);

  void flush();
  // Writes the stream end and closes the file; throws io_error on failure. Later
  // records are dropped.
  void close();

  static std::int64_t now_ns();

 private:
  void begin_record(std::uint8_t kind);
  // `now` (steady ns, the record's own time) decides a time-based flush.
  void end_record(bool flush_now, std::int64_t now);
  void write_out();

  struct encoder;
  std::string path_;
  trace_options opt_;
  std::mutex mutex_;
  int fd_ = -1;
  std::unique_ptr<encoder> enc_;
  std::size_t record_start_ = 0;
  std::uint64_t records_ = 0;
  std::int64_t last_flush_ns_ = 0;
  std::string error_;
};

// Records what passes through `inner` into `writer`. Owning and non-owning forms.
class recording_transport final : public transport {
 public:
  recording_transport(std::unique_ptr<transport> inner, std::shared_ptr<trace_writer> writer);
  recording_transport(transport& inner, std::shared_ptr<trace_writer> writer);

  node_id self() const override { return inner_->self(); }
  void send(const message& m) override;
  std::optional<message> receive(std::chrono::milliseconds wait) override;
  transport_counters counters() const override { return inner_->counters(); }

 private:
  std::uint64_t next_seq(std::vector<std::uint64_t>& counters, node_id peer);

  std::unique_ptr<transport> owned_;
  transport* inner_;
  std::shared_ptr<trace_writer> writer_;
  std::mutex mutex_;
  std::vector<std::uint64_t> sent_, received_;  // per peer: messages so far
  std::optional<std::int64_t> waiting_since_;   // first receive() call since the last message
};

// `t` wrapped in a recorder when `writer` is set, else `t` itself.
std::unique_ptr<transport> record_if(const std::shared_ptr<trace_writer>& writer, std::unique_ptr<transport> t);

// Per-process parts of a multi-process run: "<path>.part<node>".
std::string trace_part_path(const std::string& path, node_id node);
// Joins parts into `out` (each part's records, validated, in order). Missing
// parts are skipped and a truncated part contributes its readable prefix, so a
// failed run still leaves one readable trace. Removes the parts when asked and
// returns one line per skipped or truncated part. Throws trace_error when a part
// is corrupt, io_error when `out` cannot be written.
std::vector<std::string> merge_trace_files(const std::string& out, const std::vector<std::string>& parts,
                                           bool remove_parts);

// merge_trace_files(path, parts of nodes 0..layers, remove them): what a
// multi-process run calls once every process has closed its part.
std::vector<std::string> merge_trace_parts(const std::string& path, int layers);

// ---- Reading ----

struct trace_stream {
  std::uint32_t format_version = 0;
  std::uint32_t protocol_version = 0;
  std::int32_t node = -1;
  std::int32_t layers = 0;
  std::int64_t pid = 0;
  std::int64_t steady_ns = 0, system_ns = 0;  // clock pair at the start
  bool payloads = false;
  std::string boot_id, host, description;
  bool ended = false;  // a stream-end record was seen
  std::uint64_t records = 0;
};

struct trace_payload {
  payload_kind kind{};
  std::int32_t layer = 0;
  std::int64_t rows = 0, cols = 0;
  std::shared_ptr<const core::mat> data;  // null unless recorded with payloads
  std::size_t bytes() const { return static_cast<std::size_t>(rows * cols) * sizeof(double); }
};

struct trace_send {
  std::size_t stream = 0;
  std::uint64_t channel_seq = 0;
  std::int64_t t_begin = 0, t_end = 0;  // stream's steady clock
  std::uint32_t version = 0;
  msg_type type{};
  node_id sender = 0, receiver = 0;
  std::int64_t iteration = 0, batch = 0, count = 0;
  std::uint32_t flags = 0;
  std::string text;
  std::vector<trace_payload> payloads;
};

struct trace_receive {
  std::size_t stream = 0;
  std::uint64_t channel_seq = 0;
  std::int64_t t_wait = 0, t_return = 0;
  std::uint32_t version = 0;
  msg_type type{};
  node_id sender = 0, receiver = 0;
  std::int64_t iteration = 0, batch = 0;
};

struct trace_span_record {
  std::size_t stream = 0;
  node_id node = 0;
  span_block block{};
  std::uint8_t depth = 0;
  std::int64_t iteration = 0;
  std::int64_t t_begin = 0, t_end = 0;
};

enum class trace_record_kind : std::uint8_t { stream = 1, send = 2, receive = 3, span = 4, end = 5 };

struct trace_data {
  std::vector<trace_stream> streams;
  std::vector<trace_send> sends;
  std::vector<trace_receive> receives;
  std::vector<trace_span_record> spans;
  // Every send, receive and span record in file order: (kind, index).
  std::vector<std::pair<trace_record_kind, std::size_t>> order;
  bool truncated = false;
  std::string truncation;  // what was cut off, when truncated
  std::uint64_t file_bytes = 0;
};

struct trace_read_options {
  // Off only for fuzzing: lets mutated bodies reach the record decoder.
  bool verify_checksums = true;
};

// Throws trace_error naming the byte offset of the problem.
trace_data read_trace(const void* data, std::size_t size, const trace_read_options& opt = {});
// Also throws trace_error when the file cannot be opened.
trace_data read_trace_file(const std::string& path, const trace_read_options& opt = {});

// CRC-32 (IEEE 802.3, as zlib computes it).
std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0);

}  // namespace radmm::protocol
