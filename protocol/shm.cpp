#include "protocol/shm.hpp"

#include "protocol/codec.hpp"

#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <new>
#include <random>
#include <tuple>
#include <utility>

namespace bip = boost::interprocess;

namespace radmm::protocol {
namespace {

using clock_type = std::chrono::steady_clock;

constexpr const char* name_prefix = "radmm_";
constexpr const char* shm_dir = "/dev/shm/";
constexpr const char* tmp_lock_prefix = ".radmm-tmp-";  // no "radmm_" prefix: the scan must not pair it with a run
constexpr std::uint64_t inbox_magic = 0x31786f626e696d72ULL;  // "rminbox1"
constexpr std::uint32_t inbox_layout_version = 1;
constexpr std::uint64_t slot_magic = 0x31746f6c736d6472ULL;  // "rdmslot1"
constexpr std::size_t slot_align = 64;
constexpr std::size_t record_prefix = 4;  // u32 length before each header in a ring
constexpr std::size_t record_align = 8;   // keeps the u32 prefix from ever wrapping

static_assert(std::atomic<std::uint32_t>::is_always_lock_free &&
                  std::atomic<std::uint64_t>::is_always_lock_free,
              "rings in shared memory need lock-free (address-free) atomics");

std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

std::string inbox_name(const std::string& run, node_id n) {
  return name_prefix + run + "_q" + std::to_string(n);
}
std::string segment_name(const std::string& run, node_id n) {
  return name_prefix + run + "_s" + std::to_string(n);
}
std::string lock_file_name(const std::string& run) { return name_prefix + run + ".lock"; }

bool valid_run_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
      return false;
  return true;
}

// The run id in a /dev/shm entry "radmm_<pid>_<hex>..." or "" when the entry
// is not shaped like one of ours.
std::string run_of(const std::string& entry) {
  const std::string prefix = name_prefix;
  if (entry.compare(0, prefix.size(), prefix) != 0) return {};
  const std::string rest = entry.substr(prefix.size());
  const auto p1 = rest.find('_');
  if (p1 == 0 || p1 == std::string::npos) return {};
  const auto p2 = rest.find_first_of("_.", p1 + 1);
  if (p2 == std::string::npos || p2 == p1 + 1) return {};
  for (std::size_t i = 0; i < p1; ++i)
    if (rest[i] < '0' || rest[i] > '9') return {};
  for (std::size_t i = p1 + 1; i < p2; ++i)
    if (!std::isxdigit(static_cast<unsigned char>(rest[i]))) return {};
  return rest.substr(0, p2);
}

// ---- inbox layout --------------------------------------------------------
// [inbox_header][ring_header x senders][ring bytes x senders]. Each ring has
// exactly one writer (its sender) and one reader (the inbox's node); positions
// are byte counts that only grow, so no lock is needed and none can be left
// held by a killed process.

struct inbox_header {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t senders;
  std::uint64_t ring_bytes;
  alignas(64) std::atomic<std::uint32_t> doorbell;  // +1 per record published (futex word)
  std::atomic<std::uint32_t> receiver_waiting;      // receiver asleep on doorbell
  alignas(64) std::atomic<std::uint32_t> space;     // +1 per record consumed (futex word)
  std::atomic<std::uint32_t> senders_waiting;       // senders asleep on space
};

struct ring_header {
  alignas(64) std::atomic<std::uint64_t> head;  // bytes consumed; written by the receiver
  alignas(64) std::atomic<std::uint64_t> tail;  // bytes published; written by the sender
};

std::size_t inbox_bytes(std::size_t senders, std::size_t ring_bytes) {
  return sizeof(inbox_header) + senders * (sizeof(ring_header) + ring_bytes);
}

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, clock_type::duration left) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  // Not FUTEX_PRIVATE: the word is shared between processes. EAGAIN, EINTR and
  // ETIMEDOUT all mean "look again", which every caller does.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

// Announces a sleeper for the lifetime of a wait, so the other side only pays
// for a wake-up syscall when someone sleeps.
class waiting_guard {
 public:
  explicit waiting_guard(std::atomic<std::uint32_t>& count) : count_(count) { count_.fetch_add(1); }
  ~waiting_guard() { count_.fetch_sub(1); }
  waiting_guard(const waiting_guard&) = delete;
  waiting_guard& operator=(const waiting_guard&) = delete;

 private:
  std::atomic<std::uint32_t>& count_;
};

bip::permissions owner_only() {
  bip::permissions perm;
  perm.set_permissions(0600);
  return perm;
}

// A process's mapping of one node's inbox.
class inbox_map {
 public:
  inbox_map(const std::string& name, std::uint32_t senders) : name_(name) {
    try {
      bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_write);
      region_ = bip::mapped_region(shm, bip::read_write);
    } catch (const bip::interprocess_exception& e) {
      throw io_error("shm: cannot open inbox " + name + ": " + e.what());
    }
    if (region_.get_size() < sizeof(inbox_header))
      throw io_error("shm: inbox " + name + " is too small to be one");
    const auto& h = header();
    if (h.magic != inbox_magic || h.version != inbox_layout_version)
      throw io_error("shm: " + name + " is not an initialised radmm inbox (layout " +
                     std::to_string(inbox_layout_version) + ")");
    if (h.senders != senders)
      throw io_error("shm: inbox " + name + " was created for " + std::to_string(h.senders - 1) +
                     " layers, endpoint opened with " + std::to_string(senders - 1));
    ring_bytes_ = h.ring_bytes;
    if (region_.get_size() < inbox_bytes(senders, ring_bytes_))
      throw io_error("shm: inbox " + name + " is smaller than its header says");
  }

  const std::string& name() const { return name_; }
  std::size_t ring_bytes() const { return ring_bytes_; }
  std::uint32_t senders() const { return header().senders; }
  inbox_header& header() const { return *static_cast<inbox_header*>(region_.get_address()); }
  ring_header& ring(std::size_t s) const {
    return reinterpret_cast<ring_header*>(static_cast<char*>(region_.get_address()) +
                                          sizeof(inbox_header))[s];
  }
  unsigned char* data(std::size_t s) const {
    return static_cast<unsigned char*>(region_.get_address()) + sizeof(inbox_header) +
           senders() * sizeof(ring_header) + s * ring_bytes_;
  }

  // Appends one record to ring `s`; waits for room until `deadline`.
  void push(std::size_t s, const std::vector<std::uint8_t>& bytes, clock_type::time_point deadline) {
    inbox_header& h = header();
    ring_header& r = ring(s);
    const std::size_t need = align_up(record_prefix + bytes.size(), record_align);
    const std::uint64_t tail = r.tail.load(std::memory_order_relaxed);  // we are its only writer
    auto fits = [&] {
      const std::uint64_t used = tail - r.head.load(std::memory_order_acquire);
      if (used > ring_bytes_) throw protocol_error("shm: ring " + std::to_string(s) + " of " + name_ + " is corrupt");
      return ring_bytes_ - used >= need;
    };
    if (!fits()) {
      waiting_guard guard(h.senders_waiting);
      for (;;) {
        const std::uint32_t seen = h.space.load();
        if (fits()) break;
        const auto left = deadline - clock_type::now();
        if (left <= clock_type::duration::zero())
          throw timeout_error("shm send: inbox " + name_ + " stayed full (" +
                              std::to_string(ring_bytes_) + "-byte ring from node " +
                              std::to_string(s) + "); the receiver is dead or stuck");
        futex_wait(h.space, seen, left);
      }
    }
    const auto len = static_cast<std::uint32_t>(bytes.size());
    copy_in(s, tail, &len, record_prefix);
    copy_in(s, tail + record_prefix, bytes.data(), bytes.size());
    r.tail.store(tail + need, std::memory_order_release);
    h.doorbell.fetch_add(1);
    if (h.receiver_waiting.load() != 0) futex_wake(h.doorbell);
  }

  // Takes the oldest record of ring `s` into `out`; false when the ring is empty.
  bool pop(std::size_t s, std::vector<std::uint8_t>& out) {
    inbox_header& h = header();
    ring_header& r = ring(s);
    const std::uint64_t head = r.head.load(std::memory_order_relaxed);  // we are its only writer
    const std::uint64_t tail = r.tail.load(std::memory_order_acquire);
    if (head == tail) return false;
    const std::uint64_t used = tail - head;
    std::uint32_t len = 0;
    if (used <= ring_bytes_ && used >= record_align) copy_out(s, head, &len, record_prefix);
    const std::size_t need = align_up(record_prefix + len, record_align);
    if (used > ring_bytes_ || used < record_align || len > max_message_bytes || need > used) {
      // Drop what the ring holds so one bad sender cannot wedge the inbox.
      r.head.store(tail, std::memory_order_release);
      throw protocol_error("shm receive: corrupt record in ring " + std::to_string(s) + " of " +
                           name_ + " (length " + std::to_string(len) + ")");
    }
    out.resize(len);
    copy_out(s, head + record_prefix, out.data(), len);
    r.head.store(head + need, std::memory_order_release);
    h.space.fetch_add(1);
    if (h.senders_waiting.load() != 0) futex_wake(h.space);
    return true;
  }

 private:
  void copy_in(std::size_t s, std::uint64_t pos, const void* src, std::size_t n) {
    const std::size_t at = static_cast<std::size_t>(pos % ring_bytes_);
    const std::size_t first = std::min(n, ring_bytes_ - at);
    std::memcpy(data(s) + at, src, first);
    std::memcpy(data(s), static_cast<const unsigned char*>(src) + first, n - first);
  }
  void copy_out(std::size_t s, std::uint64_t pos, void* dst, std::size_t n) const {
    const std::size_t at = static_cast<std::size_t>(pos % ring_bytes_);
    const std::size_t first = std::min(n, ring_bytes_ - at);
    std::memcpy(dst, data(s) + at, first);
    std::memcpy(static_cast<unsigned char*>(dst) + first, data(s), n - first);
  }

  std::string name_;
  bip::mapped_region region_;
  std::size_t ring_bytes_ = 0;
};

void create_inbox(const std::string& name, std::uint32_t senders, std::size_t ring_bytes) {
  bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, owner_only());
  shm.truncate(static_cast<bip::offset_t>(inbox_bytes(senders, ring_bytes)));
  bip::mapped_region region(shm, bip::read_write);
  // ftruncate zero-fills, so the rings start empty; only the header needs values.
  auto* h = new (region.get_address()) inbox_header{};
  for (std::size_t s = 0; s < senders; ++s)
    new (static_cast<char*>(region.get_address()) + sizeof(inbox_header) + s * sizeof(ring_header))
        ring_header{};
  h->senders = senders;
  h->ring_bytes = ring_bytes;
  h->version = inbox_layout_version;
  // Magic last, so a half-made inbox is refused. No fence: endpoints open only
  // after the coordinator has created the run and started them, which orders
  // these writes before any opener's reads.
  h->magic = inbox_magic;
}

// ---- payload slots -------------------------------------------------------
// A slot is one 64-byte-aligned block of the sender's segment: this header,
// then the matrix at +slot_align (so the matrix is 64-byte aligned too).

struct slot_header {
  std::uint64_t magic;  // slot_magic while live, 0 once freed
  std::int32_t receiver;
  std::int32_t layer;
  std::uint8_t type;
  std::uint8_t kind;
  std::uint8_t pad[6];
  std::atomic<std::uint64_t> generation;
  std::int64_t rows;
  std::int64_t cols;
  std::uint64_t capacity;
};
static_assert(sizeof(slot_header) <= slot_align, "slot header must fit before the aligned matrix");

std::string describe_slot(node_id receiver, msg_type type, payload_kind kind, std::int32_t layer) {
  return std::string(to_string(type)) + "/" + to_string(kind) + " of layer " +
         std::to_string(layer) + " for node " + std::to_string(receiver);
}

class shm_endpoint final : public transport {
 public:
  shm_endpoint(const std::string& run_id, node_id self, int layers, std::chrono::milliseconds op_deadline)
      : run_id_(run_id), self_(self), nodes_(layers + 1), op_deadline_(op_deadline) {
    for (node_id n = 0; n < nodes_; ++n)
      inboxes_.push_back(std::make_unique<inbox_map>(inbox_name(run_id, n), static_cast<std::uint32_t>(nodes_)));
    const std::string own = segment_name(run_id, self);
    try {
      segment_ = bip::managed_shared_memory(bip::open_only, own.c_str());
    } catch (const bip::interprocess_exception& e) {
      throw io_error("shm: cannot open segment " + own + ": " + e.what());
    }
    peers_.resize(static_cast<std::size_t>(nodes_));
    buffer_.reserve(max_message_bytes);
  }

  node_id self() const override { return self_; }

  void send(const message& m) override {
    if (m.sender != self_)
      throw protocol_error("shm send: message sender " + std::to_string(m.sender) +
                           " on the endpoint of node " + std::to_string(self_));
    if (m.receiver < 0 || m.receiver >= nodes_)
      throw protocol_error(std::string("shm send: ") + to_string(m.type) + " to unknown node " +
                           std::to_string(m.receiver) + " (run has " + std::to_string(nodes_) + ")");
    std::lock_guard<std::mutex> lock(send_mutex_);
    std::vector<payload_descriptor> descriptors;
    descriptors.reserve(m.payloads.size());
    for (const auto& p : m.payloads) descriptors.push_back(write_slot(m, p));
    const auto bytes = encode_header(m, descriptors);
    inboxes_[static_cast<std::size_t>(m.receiver)]->push(static_cast<std::size_t>(self_), bytes,
                                                        clock_type::now() + op_deadline_);
    sent_.fetch_add(1, std::memory_order_relaxed);
    header_bytes_.fetch_add(bytes.size(), std::memory_order_relaxed);
  }

  std::optional<message> receive(std::chrono::milliseconds wait) override {
    std::lock_guard<std::mutex> lock(receive_mutex_);
    const auto deadline = clock_type::now() + std::max(wait, std::chrono::milliseconds(0));
    inbox_map& own = *inboxes_[static_cast<std::size_t>(self_)];
    std::size_t from = 0;
    if (!pop_any(own, from)) {
      waiting_guard guard(own.header().receiver_waiting);
      for (;;) {
        const std::uint32_t seen = own.header().doorbell.load();
        if (pop_any(own, from)) break;
        const auto left = deadline - clock_type::now();
        if (left <= clock_type::duration::zero()) return std::nullopt;
        futex_wait(own.header().doorbell, seen, left);
      }
    }
    message m = unpack(static_cast<node_id>(from));
    received_.fetch_add(1, std::memory_order_relaxed);
    return m;
  }

  transport_counters counters() const override {
    transport_counters c;
    c.messages_sent = sent_.load(std::memory_order_relaxed);
    c.messages_received = received_.load(std::memory_order_relaxed);
    c.header_bytes_sent = header_bytes_.load(std::memory_order_relaxed);
    c.payload_bytes_copied = bytes_copied_.load(std::memory_order_relaxed);
    return c;
  }

 private:
  using slot_key = std::tuple<node_id, std::uint8_t, std::uint8_t, std::int32_t>;
  struct slot_ref {
    bip::managed_shared_memory::handle_t handle;
    std::size_t capacity;
  };

  // Copies p's matrix into its slot of our segment and describes where it is.
  payload_descriptor write_slot(const message& m, const payload& p) {
    payload_descriptor d = describe(p);
    d.segment = self_;
    const std::size_t n = d.bytes();
    if (n == 0) return d;  // nothing to place; the shape travels in the descriptor
    const slot_key key{m.receiver, static_cast<std::uint8_t>(m.type), static_cast<std::uint8_t>(p.kind), p.layer};
    auto it = slots_.find(key);
    if (it != slots_.end() && it->second.capacity < n) {
      // Growing: free first so a tight segment can reuse the space; the magic
      // reset turns any descriptor still naming the old block into an error.
      auto* old = static_cast<slot_header*>(segment_.get_address_from_handle(it->second.handle));
      old->magic = 0;
      segment_.deallocate(old);
      slots_.erase(it);
      it = slots_.end();
    }
    if (it == slots_.end()) {
      void* block = segment_.allocate_aligned(slot_align + n, slot_align, std::nothrow);
      if (block == nullptr)
        throw io_error("shm send: segment " + segment_name(run_id_, self_) + " (" +
                       std::to_string(segment_.get_size()) + " bytes, " +
                       std::to_string(segment_.get_free_memory()) + " free) has no room for a " +
                       std::to_string(n) + "-byte payload " +
                       describe_slot(m.receiver, m.type, p.kind, p.layer) +
                       "; raise segment_bytes for node " + std::to_string(self_) +
                       " (see shm_segment_bytes)");
      auto* h = new (block) slot_header{};
      h->receiver = m.receiver;
      h->layer = p.layer;
      h->type = static_cast<std::uint8_t>(m.type);
      h->kind = static_cast<std::uint8_t>(p.kind);
      h->capacity = n;
      h->magic = slot_magic;
      it = slots_.emplace(key, slot_ref{segment_.get_handle_from_address(block), n}).first;
    }
    auto* h = static_cast<slot_header*>(segment_.get_address_from_handle(it->second.handle));
    auto* dst = reinterpret_cast<unsigned char*>(h) + slot_align;
    if (dst != reinterpret_cast<const unsigned char*>(p.matrix.data())) std::memcpy(dst, p.matrix.data(), n);
    h->rows = d.rows;
    h->cols = d.cols;
    const std::uint64_t generation = ++generation_;
    h->generation.store(generation, std::memory_order_release);
    d.offset = static_cast<std::uint64_t>(it->second.handle);
    d.generation = generation;
    bytes_copied_.fetch_add(n, std::memory_order_relaxed);
    return d;
  }

  // Round-robin over the senders' rings so a chatty peer cannot starve another.
  bool pop_any(inbox_map& own, std::size_t& from) {
    const std::size_t senders = static_cast<std::size_t>(nodes_);
    for (std::size_t k = 0; k < senders; ++k) {
      const std::size_t s = (next_ring_ + k) % senders;
      if (own.pop(s, buffer_)) {
        next_ring_ = s + 1;
        from = s;
        return true;
      }
    }
    return false;
  }

  message unpack(node_id from) {
    wire_header h = decode_header(buffer_.data(), buffer_.size());
    message& m = h.msg;
    if (m.receiver != self_)
      throw protocol_error(std::string("shm receive: ") + to_string(m.type) + " for node " +
                           std::to_string(m.receiver) + " arrived at node " + std::to_string(self_));
    if (m.sender != from)
      throw protocol_error(std::string("shm receive: ") + to_string(m.type) + " claims sender " +
                           std::to_string(m.sender) + " but came from node " + std::to_string(from));
    m.payloads.reserve(h.payloads.size());
    for (const auto& d : h.payloads) m.payloads.push_back(map_slot(m, d));
    return std::move(m);
  }

  payload map_slot(const message& m, const payload_descriptor& d) {
    const std::string what = describe_slot(self_, m.type, d.kind, d.layer) + " from node " + std::to_string(m.sender);
    if (d.segment != m.sender)
      throw protocol_error("shm receive: payload " + what + " names segment " + std::to_string(d.segment));
    const std::size_t n = d.bytes();
    if (n == 0) return payload{d.kind, d.layer, matrix_view(nullptr, d.rows, d.cols, nullptr)};
    const auto& region = peer(d.segment);
    const std::size_t size = region->get_size();
    if (d.offset % slot_align != 0 || d.offset > size || size - d.offset < slot_align ||
        size - d.offset - slot_align < n)
      throw protocol_error("shm receive: payload " + what + " lies outside its segment (offset " +
                           std::to_string(d.offset) + ", " + std::to_string(n) + " bytes)");
    const auto* base = static_cast<const unsigned char*>(region->get_address()) + d.offset;
    const auto* h = reinterpret_cast<const slot_header*>(base);
    if (h->magic != slot_magic || h->receiver != self_ || h->type != static_cast<std::uint8_t>(m.type) ||
        h->kind != static_cast<std::uint8_t>(d.kind) || h->layer != d.layer)
      throw protocol_error("shm receive: stale payload " + what + ": its slot was freed or reused");
    const std::uint64_t generation = h->generation.load(std::memory_order_acquire);
    if (generation != d.generation || h->rows != d.rows || h->cols != d.cols)
      throw protocol_error("shm receive: stale payload " + what + ": slot holds generation " +
                           std::to_string(generation) + ", message names " + std::to_string(d.generation) +
                           " (the sender overwrote it before it was read)");
    return payload{d.kind, d.layer,
                   matrix_view(reinterpret_cast<const double*>(base + slot_align), d.rows, d.cols, region)};
  }

  // A read-only mapping of a peer's segment, opened on first use and kept; the
  // views handed out share it, so it stays mapped while any view lives.
  const std::shared_ptr<const bip::mapped_region>& peer(node_id n) {
    auto& slot = peers_[static_cast<std::size_t>(n)];
    if (!slot) {
      const std::string name = segment_name(run_id_, n);
      try {
        bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_only);
        slot = std::make_shared<const bip::mapped_region>(shm, bip::read_only);
      } catch (const bip::interprocess_exception& e) {
        throw io_error("shm receive: cannot open segment " + name + ": " + e.what());
      }
    }
    return slot;
  }

  std::string run_id_;
  node_id self_;
  node_id nodes_;
  std::chrono::milliseconds op_deadline_;
  std::vector<std::unique_ptr<inbox_map>> inboxes_;  // every node's, ours included

  std::mutex send_mutex_;  // guards segment_, slots_, generation_
  bip::managed_shared_memory segment_;
  std::map<slot_key, slot_ref> slots_;
  std::uint64_t generation_ = 0;

  std::mutex receive_mutex_;  // guards peers_, buffer_, next_ring_
  std::vector<std::shared_ptr<const bip::mapped_region>> peers_;
  std::vector<std::uint8_t> buffer_;
  std::size_t next_ring_ = 0;

  std::atomic<std::uint64_t> sent_{0}, received_{0}, header_bytes_{0}, bytes_copied_{0};
};

std::string make_run_id() {
  std::random_device rd;
  const std::uint64_t nonce = ((static_cast<std::uint64_t>(rd()) << 32) | rd()) & 0xffffffffffffULL;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%ld_%012llx", static_cast<long>(::getpid()),
                static_cast<unsigned long long>(nonce));
  return buf;
}

}  // namespace

std::size_t shm_segment_bytes(const std::vector<std::size_t>& slot_bytes) {
  // Measured on Boost 1.74's rbtree_best_fit: under 1 KiB of manager header,
  // and per aligned allocation a block header plus up to one alignment of slack.
  std::size_t total = 16 * 1024;
  for (std::size_t b : slot_bytes) total += align_up(b, slot_align) + slot_align + 2 * slot_align;
  return align_up(total, 4096);
}

shm_run::shm_run(int layers, const shm_options& options) : layers_(layers) {
  if (layers < 1) throw std::invalid_argument("shm_run: layers = " + std::to_string(layers));
  const auto nodes = static_cast<std::size_t>(layers) + 1;
  if (!options.segment_bytes.empty() && options.segment_bytes.size() != nodes)
    throw std::invalid_argument("shm_run: segment_bytes has " + std::to_string(options.segment_bytes.size()) +
                                " entries for " + std::to_string(nodes) + " nodes");
  const std::size_t min_ring = align_up(record_prefix + max_message_bytes, record_align);
  if (options.ring_bytes < min_ring)
    throw std::invalid_argument("shm_run: ring_bytes " + std::to_string(options.ring_bytes) +
                                " cannot hold a largest header (" + std::to_string(min_ring) + ")");
  const std::size_t ring_bytes = align_up(options.ring_bytes, 64);

  id_ = make_run_id();
  // The lock is taken under a name the stale scan ignores, then renamed into
  // place, so no scan can ever see this run's lock file unlocked.
  const std::string tmp = std::string(shm_dir) + tmp_lock_prefix + id_;
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw io_error("shm_run: cannot create lock file " + tmp + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || ::rename(tmp.c_str(), (shm_dir + lock_file_name(id_)).c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    ::close(fd);
    throw io_error("shm_run: cannot lock run " + id_ + ": " + why);
  }
  lock_fd_ = fd;
  lock_path_ = shm_dir + lock_file_name(id_);

  std::string current;
  try {
    for (std::size_t n = 0; n < nodes; ++n) {
      current = inbox_name(id_, static_cast<node_id>(n));
      create_inbox(current, static_cast<std::uint32_t>(nodes), ring_bytes);
      objects_.push_back(current);
    }
    for (std::size_t n = 0; n < nodes; ++n) {
      current = segment_name(id_, static_cast<node_id>(n));
      const std::size_t bytes = options.segment_bytes.empty() ? options.default_segment_bytes : options.segment_bytes[n];
      bip::managed_shared_memory segment(bip::create_only, current.c_str(), bytes, nullptr, owner_only());
      objects_.push_back(current);
    }
  } catch (const std::exception& e) {
    // The failed object may exist half-made: created with a fresh run id, it is ours.
    bip::shared_memory_object::remove(current.c_str());
    remove_all();
    throw io_error("shm_run: cannot create " + current + ": " + e.what());
  }
}

shm_run::~shm_run() { remove_all(); }

shm_run::shm_run(shm_run&& other) noexcept
    : id_(std::move(other.id_)),
      layers_(other.layers_),
      objects_(std::move(other.objects_)),
      lock_path_(std::move(other.lock_path_)),
      lock_fd_(std::exchange(other.lock_fd_, -1)) {
  other.objects_.clear();
}

shm_run& shm_run::operator=(shm_run&& other) noexcept {
  if (this != &other) {
    remove_all();
    id_ = std::move(other.id_);
    layers_ = other.layers_;
    objects_ = std::move(other.objects_);
    other.objects_.clear();
    lock_path_ = std::move(other.lock_path_);
    lock_fd_ = std::exchange(other.lock_fd_, -1);
  }
  return *this;
}

std::vector<std::string> shm_run::object_names() const {
  std::vector<std::string> names = objects_;
  if (lock_fd_ >= 0) names.push_back(lock_file_name(id_));
  return names;
}

void shm_run::remove_all() noexcept {
  for (const auto& name : objects_) bip::shared_memory_object::remove(name.c_str());
  objects_.clear();
  if (lock_fd_ >= 0) {
    // Unlink while still holding the lock: a scan meanwhile sees it locked.
    ::unlink(lock_path_.c_str());
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
}

std::size_t shm_run::remove_stale() {
  std::map<std::string, std::vector<std::string>> runs;
  std::vector<std::string> tmp_locks;
  if (DIR* dir = ::opendir(shm_dir)) {
    while (const dirent* e = ::readdir(dir)) {
      const std::string entry = e->d_name;
      if (entry.compare(0, std::strlen(tmp_lock_prefix), tmp_lock_prefix) == 0) {
        tmp_locks.push_back(entry);
        continue;
      }
      const std::string run = run_of(entry);
      if (!run.empty()) runs[run].push_back(entry);
    }
    ::closedir(dir);
  }
  // A lock file we can lock (or a missing one) means no live process owns the run.
  auto dead = [](const std::string& path, int& fd) {
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT;  // EACCES: another user's run, not ours to judge
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
    ::close(fd);
    fd = -1;
    return false;
  };
  std::size_t removed = 0;
  for (const auto& [run, entries] : runs) {
    const std::string lock_name = lock_file_name(run);
    const std::string lock_path = shm_dir + lock_name;
    int fd = -1;
    if (!dead(lock_path, fd)) continue;
    for (const auto& entry : entries)
      if (entry != lock_name && ::shm_unlink(("/" + entry).c_str()) == 0) ++removed;
    if (fd >= 0) {
      if (::unlink(lock_path.c_str()) == 0) ++removed;
      ::close(fd);
    }
  }
  for (const auto& entry : tmp_locks) {
    const std::string path = shm_dir + entry;
    int fd = -1;
    if (dead(path, fd) && fd >= 0) {
      if (::unlink(path.c_str()) == 0) ++removed;
      ::close(fd);
    }
  }
  return removed;
}

std::unique_ptr<transport> open_shm_endpoint(const std::string& run_id, node_id self, int layers,
                                             std::chrono::milliseconds op_deadline) {
  if (!valid_run_id(run_id)) throw std::invalid_argument("open_shm_endpoint: bad run id '" + run_id + "'");
  if (layers < 1) throw std::invalid_argument("open_shm_endpoint: layers = " + std::to_string(layers));
  if (self < 0 || self > layers)
    throw std::invalid_argument("open_shm_endpoint: node " + std::to_string(self) + " outside 0.." +
                                std::to_string(layers));
  if (op_deadline.count() <= 0) throw std::invalid_argument("open_shm_endpoint: op_deadline must be positive");
  return std::make_unique<shm_endpoint>(run_id, self, layers, op_deadline);
}

}  // namespace radmm::protocol
