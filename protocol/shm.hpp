#pragma once
// Shared-memory transport: one process per node on one host.
//
// Naming. A run id is "<pid>_<12 hex digits>" (coordinator pid plus a random
// nonce). Every object of a run lives in /dev/shm under the "radmm_" prefix:
//   radmm_<run>_q<node>   inbox of node 0..N: one ring per sender, see below
//   radmm_<run>_s<node>   outbox segment of node 0..N, where its payloads live
//   radmm_<run>.lock      lock file, flock()ed by the run's owner while it lives
// All are created mode 0600.
//
// Ownership. Only the coordinator creates names, through one move-only shm_run;
// its destructor (or remove_all()) removes every object it created, the lock
// file last. Workers only open (open_shm_endpoint) and never remove. A run that
// died without cleaning up leaves its lock file unlocked (the kernel drops an
// flock with its last holder); shm_run::remove_stale(), called by the
// coordinator at start, removes such runs and nothing else. A failed run is
// torn down and recreated under a new id, never reopened. Each node has one
// endpoint per run (its inbox rings have a single reader). The lock file is
// opened O_CLOEXEC, so fork+exec'd workers do not keep a dead coordinator's
// run looking alive (a plain fork() child does, until it exits).
//
// Queues. Boost 1.74's message_queue takes its internal mutex without a
// deadline even in timed_send/timed_receive, and that mutex is not robust, so a
// peer killed inside a queue operation would hang every later user of the
// queue. An inbox here is instead one lock-free single-producer ring per sender
// (headers only, at most max_message_bytes each) plus futex doorbells. No lock
// is ever shared between processes, so a killed peer can leave nothing locked:
// a half-written record is simply never published. Per sender, delivery is
// FIFO; across senders the receiver polls the rings round-robin.
//
// Payloads and the buffer-reuse rule. send() copies each matrix into a slot of
// the SENDER's segment, one slot per (receiver, message type, payload kind,
// layer), 64-byte aligned (Eigen's vectorised reductions depend on alignment,
// and serial and parallel runs must agree bit for bit). The header carries a
// descriptor {segment = sender, offset, rows, cols, generation}. receive()
// returns views INTO the sender's segment, no copy; a view stays valid until
// the sender writes the same slot again, which the PRU protocol orders after
// the receiver's last use (transport.hpp). Each write takes a fresh generation
// from a per-endpoint counter; a descriptor whose generation no longer matches
// its slot, or whose slot was freed (grown), is a protocol_error ("stale
// payload"). Segments do not grow: the coordinator sizes each from an estimate
// (shm_segment_bytes) and a payload that does not fit is an io_error naming
// the node and sizes.
//
// Errors. Opening a missing or mismatched run: io_error. A ring still full at
// the send deadline (receiver dead or stuck): timeout_error. Malformed headers,
// misdelivered or stale payloads: protocol_error. receive() returns nullopt on
// timeout so the caller can poll for dead processes in between.
//
// Linux only (futex, /dev/shm, flock).
#include "protocol/transport.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace radmm::protocol {

struct shm_options {
  // Bytes of each node's outbox segment, indexed by node 0..layers. Empty:
  // default_segment_bytes for every node.
  std::vector<std::size_t> segment_bytes;
  std::size_t default_segment_bytes = std::size_t{64} << 20;
  // Bytes of each (sender, receiver) ring. Must hold a largest header plus its
  // record prefix; typical headers are a few hundred bytes.
  std::size_t ring_bytes = std::size_t{64} << 10;
};

// Segment size that holds slots of the given payload sizes (bytes of matrix
// data, one entry per slot the node will use), with the allocator's overhead.
// Slots that grow during a run free and reallocate, so leave room for that too.
std::size_t shm_segment_bytes(const std::vector<std::size_t>& slot_bytes);

class shm_run {
 public:
  // Creates the lock file, then the inboxes and segments of nodes 0..layers.
  // Throws io_error (naming the object) when anything cannot be created; what
  // was created by then is removed.
  explicit shm_run(int layers, const shm_options& options = {});
  ~shm_run();
  shm_run(shm_run&& other) noexcept;
  shm_run& operator=(shm_run&& other) noexcept;
  shm_run(const shm_run&) = delete;
  shm_run& operator=(const shm_run&) = delete;

  const std::string& id() const { return id_; }
  int layers() const { return layers_; }
  // /dev/shm entry names this run created (objects and lock file); empty once removed.
  std::vector<std::string> object_names() const;

  // Removes every object, then the lock file. Idempotent; never throws.
  void remove_all() noexcept;

  // Removes the objects of every radmm run in /dev/shm whose lock file is not
  // held by a live process (or is missing). Live runs, including this
  // process's own, are left alone. Returns the number of entries removed.
  static std::size_t remove_stale();

 private:
  std::string id_;
  int layers_ = 0;
  std::vector<std::string> objects_;  // shm object names, without the leading '/'
  std::string lock_path_;
  int lock_fd_ = -1;
};

// Opens (never creates) the endpoint of node `self` in run `run_id` with
// `layers` layers. `op_deadline` bounds how long send() waits for room in a
// full ring. Throws io_error when the run's objects are missing or do not match
// `layers`. The endpoint's counters() report messages, header bytes and the
// matrix bytes copied into its segment.
std::unique_ptr<transport> open_shm_endpoint(const std::string& run_id, node_id self, int layers,
                                             std::chrono::milliseconds op_deadline);

}  // namespace radmm::protocol
