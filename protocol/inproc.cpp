#include "protocol/inproc.hpp"

#include "protocol/codec.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace radmm::protocol {

struct inproc_network::state {
  struct inbox {
    std::deque<message> queue;
    std::condition_variable ready;
    bool taken = false;  // an endpoint is live for this node
  };
  // One mutex for all inboxes: traffic is a few messages per iteration, and a
  // single lock makes close() trivially race-free.
  std::mutex mutex;
  std::vector<inbox> inboxes;
  bool closed = false;

  explicit state(int nodes) : inboxes(static_cast<std::size_t>(nodes)) {}
};

namespace {

class inproc_endpoint final : public transport {
 public:
  inproc_endpoint(std::shared_ptr<inproc_network::state> net, node_id self)
      : net_(std::move(net)), self_(self) {}

  ~inproc_endpoint() override {
    std::lock_guard<std::mutex> lock(net_->mutex);
    net_->inboxes[static_cast<std::size_t>(self_)].taken = false;
  }

  node_id self() const override { return self_; }

  void send(const message& m) override {
    if (m.sender != self_)
      throw protocol_error("inproc send: message sender " + std::to_string(m.sender) +
                           " on the endpoint of node " + std::to_string(self_));
    const auto nodes = static_cast<node_id>(net_->inboxes.size());
    if (m.receiver < 0 || m.receiver >= nodes)
      throw protocol_error(std::string("inproc send: ") + to_string(m.type) + " to unknown node " +
                           std::to_string(m.receiver) + " (network has " +
                           std::to_string(nodes) + ")");
    // Same limit as the wire transports, so a message that would not fit there
    // fails in tests too.
    std::vector<payload_descriptor> descriptors;
    descriptors.reserve(m.payloads.size());
    for (const auto& p : m.payloads) descriptors.push_back(describe(p));
    const std::size_t header_bytes = encode_header(m, descriptors).size();
    {
      std::lock_guard<std::mutex> lock(net_->mutex);
      if (net_->closed) throw io_error("inproc send: network closed");
      auto& box = net_->inboxes[static_cast<std::size_t>(m.receiver)];
      box.queue.push_back(m);
      box.ready.notify_one();
    }
    sent_.fetch_add(1, std::memory_order_relaxed);
    header_bytes_.fetch_add(header_bytes, std::memory_order_relaxed);
  }

  std::optional<message> receive(std::chrono::milliseconds wait) override {
    std::unique_lock<std::mutex> lock(net_->mutex);
    auto& box = net_->inboxes[static_cast<std::size_t>(self_)];
    const bool woke = box.ready.wait_for(lock, wait, [&] { return net_->closed || !box.queue.empty(); });
    if (net_->closed) throw io_error("inproc receive: network closed");
    if (!woke) return std::nullopt;
    message m = std::move(box.queue.front());
    box.queue.pop_front();
    received_.fetch_add(1, std::memory_order_relaxed);
    return m;
  }

  transport_counters counters() const override {
    transport_counters c;
    c.messages_sent = sent_.load(std::memory_order_relaxed);
    c.messages_received = received_.load(std::memory_order_relaxed);
    c.header_bytes_sent = header_bytes_.load(std::memory_order_relaxed);
    return c;
  }

 private:
  std::shared_ptr<inproc_network::state> net_;
  node_id self_;
  std::atomic<std::uint64_t> sent_{0}, received_{0}, header_bytes_{0};
};

}  // namespace

inproc_network::inproc_network(int nodes) {
  if (nodes < 1) throw std::invalid_argument("inproc_network: nodes = " + std::to_string(nodes));
  state_ = std::make_shared<state>(nodes);
}

inproc_network::~inproc_network() = default;

int inproc_network::nodes() const { return static_cast<int>(state_->inboxes.size()); }

std::unique_ptr<transport> inproc_network::endpoint(node_id self) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (self < 0 || self >= static_cast<node_id>(state_->inboxes.size()))
    throw std::invalid_argument("inproc_network::endpoint: node " + std::to_string(self) +
                                " outside 0.." + std::to_string(state_->inboxes.size() - 1));
  auto& box = state_->inboxes[static_cast<std::size_t>(self)];
  if (box.taken)
    throw std::invalid_argument("inproc_network::endpoint: node " + std::to_string(self) +
                                " already has a live endpoint");
  box.taken = true;
  return std::make_unique<inproc_endpoint>(state_, self);
}

void inproc_network::close() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->closed = true;
  for (auto& box : state_->inboxes) {
    box.queue.clear();
    box.ready.notify_all();
  }
}

namespace {
transport& checked(const std::unique_ptr<transport>& inner) {
  if (!inner) throw std::invalid_argument("delaying_transport: null inner transport");
  return *inner;
}
}  // namespace

delaying_transport::delaying_transport(std::unique_ptr<transport> inner, double probability,
                                       std::chrono::microseconds max_delay, std::uint64_t seed)
    : delaying_transport(checked(inner), probability, max_delay, seed) {
  owned_ = std::move(inner);
}

delaying_transport::delaying_transport(transport& inner, double probability,
                                       std::chrono::microseconds max_delay, std::uint64_t seed)
    : inner_(&inner), probability_(probability), max_delay_(max_delay), rng_(seed) {
  if (!(probability >= 0.0 && probability <= 1.0))
    throw std::invalid_argument("delaying_transport: probability " + std::to_string(probability));
  if (max_delay.count() < 0) throw std::invalid_argument("delaying_transport: negative max_delay");
}

void delaying_transport::send(const message& m) {
  std::chrono::microseconds delay{0};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (rng_.uniform() < probability_)
      delay = std::chrono::microseconds(
          static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(max_delay_.count()) + 1)));
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  inner_->send(m);
}

}  // namespace radmm::protocol
