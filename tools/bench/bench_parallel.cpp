// radmm-bench-parallel: issue 3's benchmark. For each configuration (N, d, n):
// wall time per iteration of the serial sweep on one thread and on every core,
// of the parallel regional update with one radmm-worker process per layer over
// shared memory (train_processes), and with one thread per layer in process
// (train_inproc); their ratios next to the bound the pipeline and the core
// count allow; per worker, the share of time computing, waiting and sending.
// Then the protocol's TICK/TOCK latency (a run with tiny d, where an
// iteration's wall time is one TICK plus one TOCK) next to bare round trips
// measured in the same run: a Boost.Interprocess message_queue, the
// shared-memory transport (open_shm_endpoint) and the in-process transport.
// Numbers, not a test; see docs/benchmarks.md.
#include "bench_common.hpp"

#include "coordinator/inproc_run.hpp"
#include "coordinator/process_run.hpp"
#include "coordinator/training.hpp"
#include "core/serial.hpp"
#include "protocol/inproc.hpp"
#include "protocol/shm.hpp"
#include "worker/driver.hpp"
#include "worker/layer_machine.hpp"

#include <Eigen/Core>
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <tuple>
#include <iostream>
#include <memory>
#include <optional>

namespace radmm::bench {
namespace {

namespace pr = protocol;
namespace co = coordinator;
namespace bip = boost::interprocess;

const char* usage_text =
    "usage: radmm-bench-parallel [flags]\n"
    "  --layers LIST       N values (default 5,10)\n"
    "  --dims LIST         widths d (default 256,1024,3000); each with n = 10 and n = d\n"
    "  --shapes DxN,...    explicit shapes instead of --dims\n"
    "  --full              include the slow ones: d = n = 3000, and N = 10 at d = n = 1024\n"
    "  --quick             N = 5 only, d in 256,1024, two repetitions\n"
    "  --modes LIST        serial1,serialT,shm,inproc (default all)\n"
    "  --threads T         threads of serialT (default: all cores)\n"
    "  --iterations K      timed iterations per run (default: about 1 s of serialT, at least 2)\n"
    "  --reps R            rounds of every mode, medians reported (default 3)\n"
    "  --algorithm A       2s | 3s (default 2s)\n"
    "  --activation A      relu, sigmoid, ... (default relu)\n"
    "  --latency-iterations K   iterations of the tiny-d latency run (default 2000)\n"
    "  --round-trips M     timed round trips per ping-pong (default 2000)\n"
    "  --latency-shape DxN TICK/TOCK delivery measured at this size too (default 1024x1024; --quick 256x256)\n"
    "  --no-latency        skip the TICK/TOCK section\n"
    "  --markdown          print tables as Markdown\n"
    "  --seed S            data and weights (default 1)\n";

// ---- timing one run ---------------------------------------------------------

enum class mode { serial1, serialT, shm, inproc };
const char* name_of(mode m) {
  switch (m) {
    case mode::serial1: return "serial1";
    case mode::serialT: return "serialT";
    case mode::shm: return "shm";
    case mode::inproc: return "inproc";
  }
  return "?";
}
mode parse_mode(const std::string& s) {
  for (mode m : {mode::serial1, mode::serialT, mode::shm, mode::inproc})
    if (s == name_of(m)) return m;
  throw usage_error("unknown mode '" + s + "' (serial1, serialT, shm, inproc)");
}

struct timed_run {
  double per_iteration = 0;  // seconds
  std::vector<co::worker_report> workers;
};

co::problem to_problem(const synthetic& s) {
  co::problem p;
  p.arch = s.arch;
  p.hp = s.hp;
  p.W0 = s.W0;
  p.X_train = s.X;
  p.Y_train = s.Y;
  p.X_test = core::mat(s.X.rows(), 0);
  p.Y_test = core::mat(s.Y.rows(), 0);
  return p;
}

// Runs 2K iterations as two STEPs of K (sync_every = K, metrics only at k =
// K and 2K, so none inside the timed loop) and times the second STEP between
// the two metrics rows: K iterations, one metrics point (a forward pass) and
// one STEP/SYNC exchange. The serial run follows the same schedule, so each
// window holds the same work in every mode; the first STEP warms up (spawn,
// INIT, first-touch pages, the forward initialisation are outside).
timed_run run_once(mode m, const co::problem& p, long K, int threads_T) {
  co::schedule s;
  s.iterations = 2 * K;
  s.sync_every = K;
  s.metrics_every = K;
  std::map<long, clock_type::time_point> at;
  co::metrics_callback cb = [&](const core::iteration_metrics& row) { at[row.iteration] = clock_type::now(); };
  co::run_result r;
  switch (m) {
    case mode::serial1:
      Eigen::setNbThreads(1);
      r = co::train_serial(p, s, cb);
      break;
    case mode::serialT:
      Eigen::setNbThreads(threads_T);
      r = co::train_serial(p, s, cb);
      break;
    case mode::shm:
      r = co::train_processes(p, s, cb);  // each radmm-worker runs Eigen on one thread
      break;
    case mode::inproc:
      Eigen::setNbThreads(1);  // one thread per layer, as the worker processes
      r = co::train_inproc(p, s, cb);
      break;
  }
  if (!at.count(K) || !at.count(2 * K)) throw std::runtime_error(std::string(name_of(m)) + ": missing metrics rows");
  timed_run out;
  out.per_iteration = std::chrono::duration<double>(at[2 * K] - at[K]).count() / static_cast<double>(K);
  out.workers = std::move(r.workers);
  return out;
}

// ---- ping-pong ----------------------------------------------------------------

// The echo side of a ping-pong, in a child process started by fork + exec of
// this program ("--echo-child shm RUN_ID" or "--echo-child mq NAME"): answers
// every message until QUIT (or an empty mq message).
int echo_child(const std::string& kind, const std::string& name) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (kind == "shm") {
    auto t = pr::open_shm_endpoint(name, 1, 1, std::chrono::seconds(10));
    pr::message hello;
    hello.type = pr::msg_type::hello;
    hello.sender = 1;
    hello.receiver = 0;
    t->send(hello);
    for (;;) {
      std::optional<pr::message> m = t->receive(std::chrono::seconds(30));
      if (!m || m->type == pr::msg_type::quit) return m ? 0 : 5;
      pr::message back = std::move(*m);  // same payload views: one copy into our segment, as a TICK
      back.sender = 1;
      back.receiver = 0;
      t->send(back);
    }
  }
  if (kind == "mq") {
    bip::message_queue ping(bip::open_only, (name + "_ping").c_str());
    bip::message_queue pong(bip::open_only, (name + "_pong").c_str());
    char buf[64];
    for (;;) {
      bip::message_queue::size_type got = 0;
      unsigned prio = 0;
      ping.receive(buf, sizeof buf, got, prio);
      if (got == 0) return 0;
      pong.send(buf, got, 0);
    }
  }
  return 2;
}

// A child process of this program, killed and reaped on destruction.
class child_process {
 public:
  explicit child_process(const std::vector<std::string>& args) {
    char self[4096];
    const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) throw std::runtime_error("cannot find this program's path");
    self[len] = '\0';
    std::vector<std::string> all{self};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      execv(self, argv.data());
      _exit(127);
    }
  }
  ~child_process() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  // Waits for a clean exit (after QUIT); false if it had to be killed.
  bool join(std::chrono::milliseconds grace) {
    const auto until = clock_type::now() + grace;
    while (clock_type::now() < until) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0;
      }
      usleep(1000);
    }
    return false;
  }
  bool alive() {
    int st = 0;
    if (pid_ > 0 && waitpid(pid_, &st, WNOHANG) == pid_) pid_ = -1;
    return pid_ > 0;
  }

 private:
  pid_t pid_ = -1;
};

pr::message ping_message(int round, const std::shared_ptr<const core::mat>& payload) {
  pr::message m;
  m.type = pr::msg_type::tick;
  m.sender = 0;
  m.receiver = 1;
  m.iteration = round;
  if (payload) m.payloads.push_back({pr::payload_kind::V, 0, pr::matrix_view(payload)});
  return m;
}

pr::message wait_message(pr::transport& t, const std::function<void()>& health) {
  const auto start = clock_type::now();
  for (;;) {
    std::optional<pr::message> m = t.receive(std::chrono::milliseconds(100));
    if (m) return std::move(*m);
    if (health) health();
    if (seconds_since(start) > 30) throw std::runtime_error("ping-pong: no answer within 30 s");
  }
}

// Median round trip (seconds) of `reps` pings over an endpoint, after a
// warm-up, with a d x n payload (none when rows or cols is 0).
double ping_pong(pr::transport& t, long rows, long cols, int reps, const std::function<void()>& health) {
  std::shared_ptr<const core::mat> payload;
  if (rows > 0 && cols > 0) payload = std::make_shared<const core::mat>(core::mat::Random(rows, cols));
  std::vector<double> rtt;
  const int warm = std::max(20, reps / 20);
  for (int r = 0; r < warm + reps; ++r) {
    const auto t0 = clock_type::now();
    t.send(ping_message(r, payload));
    pr::message back = wait_message(t, health);
    const double s = seconds_since(t0);
    if (back.iteration != r) throw std::runtime_error("ping-pong: answer out of order");
    if (r >= warm) rtt.push_back(s);
  }
  return median(rtt);
}

struct rtt_results {
  double mq = NAN, shm = NAN, inproc = NAN;
  std::vector<std::pair<std::string, double>> shm_payload;  // "d x n" -> round trip with that payload
};

rtt_results bare_round_trips(int reps, const std::vector<shape>& payloads) {
  rtt_results out;
  // Boost.Interprocess message_queue between two processes, 64-byte messages.
  {
    const std::string name = "radmm_bench_" + std::to_string(getpid()) + "_mq";
    struct mq_names {
      std::string base;
      ~mq_names() {
        bip::message_queue::remove((base + "_ping").c_str());
        bip::message_queue::remove((base + "_pong").c_str());
      }
    } cleanup{name};
    bip::message_queue ping(bip::create_only, (name + "_ping").c_str(), 4, 64);
    bip::message_queue pong(bip::create_only, (name + "_pong").c_str(), 4, 64);
    child_process child({"--echo-child", "mq", name});
    char msg[64] = {1};
    char buf[64];
    std::vector<double> rtt;
    const int warm = std::max(20, reps / 20);
    for (int r = 0; r < warm + reps; ++r) {
      const auto t0 = clock_type::now();
      ping.send(msg, sizeof msg, 0);
      bip::message_queue::size_type got = 0;
      unsigned prio = 0;
      const auto deadline = boost::posix_time::microsec_clock::universal_time() + boost::posix_time::seconds(30);
      if (!pong.timed_receive(buf, sizeof buf, got, prio, deadline)) throw std::runtime_error("message_queue ping-pong: no answer");
      if (r >= warm) rtt.push_back(seconds_since(t0));
    }
    ping.send(msg, 0, 0);  // empty message: the child exits
    child.join(std::chrono::seconds(5));
    out.mq = median(rtt);
  }
  // The shared-memory transport between two processes (the coordinator's side of a run of 1 layer).
  {
    pr::shm_options opt;
    std::size_t biggest = 0;
    for (const shape& s : payloads) biggest = std::max(biggest, static_cast<std::size_t>(s.d * s.n) * sizeof(double));
    opt.default_segment_bytes = pr::shm_segment_bytes({biggest, biggest}) + (std::size_t{4} << 20);
    pr::shm_run run(1, opt);
    child_process child({"--echo-child", "shm", run.id()});
    auto t = pr::open_shm_endpoint(run.id(), 0, 1, std::chrono::seconds(10));
    auto health = [&] {
      if (!child.alive()) throw std::runtime_error("ping-pong: the echo process died");
    };
    const pr::message hello = wait_message(*t, health);
    if (hello.type != pr::msg_type::hello) throw std::runtime_error("ping-pong: expected HELLO");
    out.shm = ping_pong(*t, 0, 0, reps, health);
    for (const shape& s : payloads)
      out.shm_payload.push_back({std::to_string(s.d) + "x" + std::to_string(s.n),
                                 ping_pong(*t, s.d, s.n, std::max(20, reps / 20), health)});
    pr::message quit;
    quit.type = pr::msg_type::quit;
    quit.sender = 0;
    quit.receiver = 1;
    t->send(quit);
    child.join(std::chrono::seconds(5));
  }
  // The in-process transport between two threads.
  {
    pr::inproc_network net(2);
    auto a = net.endpoint(0);
    auto b = net.endpoint(1);
    std::thread echo([&b] {
      for (;;) {
        std::optional<pr::message> m = b->receive(std::chrono::seconds(30));
        if (!m || m->type == pr::msg_type::quit) return;
        pr::message back = std::move(*m);
        back.sender = 1;
        back.receiver = 0;
        b->send(back);
      }
    });
    try {
      out.inproc = ping_pong(*a, 0, 0, reps, {});
    } catch (...) {
      net.close();
      echo.join();
      throw;
    }
    pr::message quit;
    quit.type = pr::msg_type::quit;
    quit.sender = 0;
    quit.receiver = 1;
    a->send(quit);
    echo.join();
  }
  return out;
}

// ---- TICK/TOCK delivery latency inside a run -----------------------------------
//
// The PRU protocol run with every node as a thread of this process, over the
// shared-memory transport (the same rings, doorbells and segments as between
// processes) or the in-process one, each endpoint wrapped so that a message's
// send start and its arrival are timestamped on one clock. A message whose
// receiver was already blocked in receive() when the send began gives a
// delivery latency (send start to receive return: payload copy, header, ring,
// wake-up); one that waited in the inbox while its receiver computed is queued,
// not slow, and only counted.

struct latency_log {
  using key = std::tuple<int, int, int, std::int64_t, std::uint32_t>;  // sender, receiver, type, iteration, flags
  std::mutex mutex;
  std::map<key, clock_type::time_point> sent;
  std::map<pr::msg_type, std::vector<double>> delivered;  // receiver was waiting
  std::map<pr::msg_type, long> queued;
  std::map<pr::msg_type, std::vector<double>> send_seconds;
};

class timed_transport final : public pr::transport {
 public:
  timed_transport(std::unique_ptr<pr::transport> inner, latency_log& log) : inner_(std::move(inner)), log_(log) {}
  pr::node_id self() const override { return inner_->self(); }
  void send(const pr::message& m) override {
    const auto t0 = clock_type::now();
    {
      std::lock_guard<std::mutex> lock(log_.mutex);
      log_.sent[key_of(m)] = t0;
    }
    inner_->send(m);
    const double s = seconds_since(t0);
    std::lock_guard<std::mutex> lock(log_.mutex);
    log_.send_seconds[m.type].push_back(s);
  }
  std::optional<pr::message> receive(std::chrono::milliseconds wait) override {
    const auto t0 = clock_type::now();
    std::optional<pr::message> m = inner_->receive(wait);
    if (m) {
      const auto t1 = clock_type::now();
      std::lock_guard<std::mutex> lock(log_.mutex);
      auto it = log_.sent.find(key_of(*m));
      if (it != log_.sent.end()) {
        if (t0 <= it->second)
          log_.delivered[m->type].push_back(std::chrono::duration<double>(t1 - it->second).count());
        else
          ++log_.queued[m->type];
        log_.sent.erase(it);
      }
    }
    return m;
  }
  pr::transport_counters counters() const override { return inner_->counters(); }

 private:
  static latency_log::key key_of(const pr::message& m) {
    return {m.sender, m.receiver, static_cast<int>(m.type), m.iteration, m.flags};
  }
  std::unique_ptr<pr::transport> inner_;
  latency_log& log_;
};

// train_inproc's shape (coordinator + one thread per layer, the same driver
// loop and machines) over timed endpoints of either transport.
void run_threads_timed(const co::problem& p, const co::schedule& s, bool shm, latency_log& log) {
  const int N = p.arch.layers;
  std::unique_ptr<pr::shm_run> run;
  std::unique_ptr<pr::inproc_network> net;
  if (shm) {
    // Every node's slots at most: the coordinator's INIT (all W_i, X, Y), a
    // layer's TOCK, TICK, forward and SYNC payloads; doubled for the allocator.
    std::size_t data = 0;
    for (int i = 1; i <= N; ++i) data += static_cast<std::size_t>(p.W0[static_cast<std::size_t>(i)].size());
    data += static_cast<std::size_t>(p.X_train.size() + p.Y_train.size());
    const std::size_t layer = static_cast<std::size_t>(2 * p.W0[1].size() + 4 * p.X_train.size()) + 4096;
    pr::shm_options o;
    o.default_segment_bytes = 2 * sizeof(double) * std::max(data, layer) + (std::size_t{8} << 20);
    run = std::make_unique<pr::shm_run>(N, o);
  } else {
    net = std::make_unique<pr::inproc_network>(N + 1);
  }
  auto open = [&](int node) -> std::unique_ptr<pr::transport> {
    std::unique_ptr<pr::transport> t =
        shm ? pr::open_shm_endpoint(run->id(), node, N, std::chrono::seconds(30)) : net->endpoint(node);
    return std::make_unique<timed_transport>(std::move(t), log);
  };
  std::atomic<bool> abort{false};
  std::mutex failure_mutex;
  std::exception_ptr failure;
  std::vector<std::thread> threads;
  Eigen::setNbThreads(1);
  for (int i = 1; i <= N; ++i) {
    threads.emplace_back([&, i, ep = open(i)]() mutable {
      try {
        worker::layer_machine machine(i);
        worker::driver_options opt;
        opt.still_wanted = [&abort] { return !abort.load(); };
        worker::run_machine(*ep, machine, opt);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    });
  }
  auto coord = open(pr::coordinator_id);
  co::parallel_options popt;
  popt.health_check = [&] {
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (failure) std::rethrow_exception(failure);
  };
  try {
    co::train_parallel(p, s, *coord, popt, {});
  } catch (...) {
    abort = true;
    if (net) net->close();
    for (auto& t : threads) t.join();
    throw;
  }
  for (auto& t : threads) t.join();
}

struct latency_summary {
  double tick = NAN, tock = NAN, tick_send = NAN, tock_send = NAN;
  long tick_samples = 0, tock_samples = 0, tick_queued = 0, tock_queued = 0;
};

latency_summary protocol_latency(const co::problem& p, long K, bool shm) {
  latency_log log;
  co::schedule s;
  s.iterations = K;
  s.sync_every = K;
  s.metrics_every = 0;
  run_threads_timed(p, s, shm, log);
  latency_summary out;
  out.tick = median(log.delivered[pr::msg_type::tick]);
  out.tock = median(log.delivered[pr::msg_type::tock]);
  out.tick_samples = static_cast<long>(log.delivered[pr::msg_type::tick].size());
  out.tock_samples = static_cast<long>(log.delivered[pr::msg_type::tock].size());
  out.tick_queued = log.queued[pr::msg_type::tick];
  out.tock_queued = log.queued[pr::msg_type::tock];
  out.tick_send = median(log.send_seconds[pr::msg_type::tick]);
  out.tock_send = median(log.send_seconds[pr::msg_type::tock]);
  return out;
}

// ---- the report ---------------------------------------------------------------

struct config {
  int layers;
  shape sh;
};

void print_workers(const std::string& title, const std::vector<co::worker_report>& w, bool with_memory, bool markdown) {
  std::cout << title << "\n";
  std::vector<std::string> head{"layer", "compute", "wait", "send", "msgs out", "send/msg"};
  if (with_memory) {
    head.push_back("block MB");
    head.push_back("peak RSS MB");
  }
  table t(head);
  for (std::size_t i = 1; i < w.size(); ++i) {
    const co::worker_report& r = w[i];
    const double all = r.compute_s + r.wait_s + r.send_s;
    std::vector<std::string> row{std::to_string(i), fixed(100 * r.compute_s / all, 1) + "%",
                                 fixed(100 * r.wait_s / all, 1) + "%", fixed(100 * r.send_s / all, 2) + "%",
                                 std::to_string(r.messages_out),
                                 duration(r.messages_out > 0 ? r.send_s / static_cast<double>(r.messages_out) : NAN)};
    if (with_memory) {
      row.push_back(fixed(static_cast<double>(r.block_bytes) / (1 << 20), 1));
      row.push_back(fixed(static_cast<double>(r.peak_rss_kb) / 1024, 1));
    }
    t.add(row);
  }
  t.print(std::cout, markdown);
}

int run(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--echo-child") return echo_child(argv[2], argv[3]);
  flags f(argc, argv, {"quick", "full", "no-latency", "markdown", "help"});
  if (f.on("help")) {
    std::cout << usage_text;
    return 0;
  }
  const bool quick = f.on("quick");
  const bool full = f.on("full");
  const std::vector<long> layer_list = f.integers("layers", quick ? "5" : "5,10");
  const std::vector<long> dims = f.integers("dims", quick ? "256,1024" : "256,1024,3000");
  const std::vector<std::string> shape_list = f.list("shapes", "");
  std::vector<mode> modes;
  for (const std::string& s : f.list("modes", "serial1,serialT,shm,inproc")) modes.push_back(parse_mode(s));
  const int threads_T = static_cast<int>(f.integer("threads", hardware_threads()));
  const long fixed_K = f.integer("iterations", 0);
  const int reps = static_cast<int>(f.integer("reps", quick ? 2 : 3));
  const core::algorithm algo = core::parse_algorithm(f.str("algorithm", "2s"));
  const core::activation act = core::parse_activation(f.str("activation", "relu"));
  const long latency_K = f.integer("latency-iterations", 2000);
  const int round_trips = static_cast<int>(f.integer("round-trips", 2000));
  const shape latency_shape = parse_shape(f.str("latency-shape", quick ? "256x256" : "1024x1024"));
  const bool latency = !f.on("no-latency");
  const bool markdown = f.on("markdown");
  const auto seed = static_cast<std::uint64_t>(f.integer("seed", 1));
  f.check_all_used();
  if (reps < 1 || threads_T < 1 || latency_K < 2 || round_trips < 10) throw usage_error("bad --reps, --threads, --latency-iterations or --round-trips");

  std::vector<config> configs;
  std::vector<std::string> skipped;
  for (const long N : layer_list) {
    if (N < 2) throw usage_error("--layers: N >= 2");
    std::vector<shape> shapes;
    if (!shape_list.empty()) {
      for (const std::string& s : shape_list) shapes.push_back(parse_shape(s));
    } else {
      for (const long d : dims) {
        shapes.push_back({d, 10});
        shapes.push_back({d, d});
      }
    }
    for (const shape& sh : shapes) {
      const bool slow = shape_list.empty() && sh.n == sh.d && (sh.d >= 3000 || (sh.d >= 1024 && N >= 10));
      if (slow && !full) {
        skipped.push_back("N=" + std::to_string(N) + " d=n=" + std::to_string(sh.d));
        continue;
      }
      configs.push_back({static_cast<int>(N), sh});
    }
  }

  std::cout << "radmm-bench-parallel  " << today() << "  cores: " << hardware_threads() << "  " << core::to_string(algo)
            << " linearized, " << core::to_string(act) << ", q = 1; serialT = " << threads_T
            << " Eigen threads; shm/inproc: one single-threaded worker per layer\n"
            << "per-iteration time: median over " << reps << " rounds of a K-iteration STEP after a K-iteration warm-up STEP\n";
  if (!skipped.empty()) {
    std::cout << "skipped (slow; --full or --shapes to run):";
    for (const auto& s : skipped) std::cout << " " << s;
    std::cout << "\n";
  }
  std::cout << std::endl;  // flushed: a run cut short still shows what it was

  table summary({"N", "d", "n", "K", "serial1", "serialT", "shm", "inproc", "shm/serial1", "shm/serialT", "shm/inproc",
                 "bound shm/serial1"});
  std::vector<std::pair<std::string, std::vector<co::worker_report>>> worker_tables;
  for (const config& c : configs) {
    const synthetic sp = make_problem(c.layers, c.sh.d, c.sh.n, act, algo, core::variant::linearized, seed);
    const co::problem p = to_problem(sp);
    // K: about one second of the all-cores serial sweep, at least 2.
    long K = fixed_K;
    if (K <= 0) {
      Eigen::setNbThreads(threads_T);
      core::serial_engine e(sp.arch, sp.hp, sp.W0);
      e.set_batch(sp.X, sp.Y);
      e.iterate();
      const auto t0 = clock_type::now();
      e.iterate();
      K = std::clamp(static_cast<long>(std::ceil(1.0 / std::max(seconds_since(t0), 1e-6))), 2L, 200L);
    }
    std::map<mode, std::vector<double>> times;
    std::map<mode, std::vector<co::worker_report>> last_workers;
    std::vector<double> r_s1, r_sT, r_in;
    for (int r = 0; r < reps; ++r) {
      std::map<mode, double> round;
      for (const mode m : modes) {
        timed_run tr = run_once(m, p, K, threads_T);
        times[m].push_back(tr.per_iteration);
        round[m] = tr.per_iteration;
        if (!tr.workers.empty()) last_workers[m] = std::move(tr.workers);
      }
      // Ratios within one round, so a slow spell on the shared machine cancels.
      if (round.count(mode::shm)) {
        if (round.count(mode::serial1)) r_s1.push_back(round[mode::shm] / round[mode::serial1]);
        if (round.count(mode::serialT)) r_sT.push_back(round[mode::shm] / round[mode::serialT]);
        if (round.count(mode::inproc)) r_in.push_back(round[mode::shm] / round[mode::inproc]);
      }
    }
    auto med = [&](mode m) { return times.count(m) ? median(times[m]) : NAN; };
    const layer_flops lf = iteration_flops(sp.arch, algo, c.sh.n);
    const double total = lf.total().total();
    const double bound = std::max(1.0 / hardware_threads(), pipeline_period(lf) / total);
    summary.add({std::to_string(c.layers), std::to_string(c.sh.d), std::to_string(c.sh.n), std::to_string(K),
                 duration(med(mode::serial1)), duration(med(mode::serialT)), duration(med(mode::shm)),
                 duration(med(mode::inproc)), fixed(median(r_s1), 2), fixed(median(r_sT), 2), fixed(median(r_in), 3),
                 fixed(bound, 2)});
    const std::string cfg = "N=" + std::to_string(c.layers) + " d=" + std::to_string(c.sh.d) + " n=" + std::to_string(c.sh.n);
    if (last_workers.count(mode::shm)) worker_tables.push_back({"shm " + cfg, last_workers[mode::shm]});
    if (last_workers.count(mode::inproc)) worker_tables.push_back({"inproc " + cfg, last_workers[mode::inproc]});
    std::cerr << "done: " << cfg << "\n";
  }
  std::cout << "wall time per iteration (median) and ratios (median of per-round ratios)\n";
  summary.print(std::cout, markdown);
  std::cout << "bound shm/serial1 = max(1/cores, pipeline period / total work): the least ratio the layer pipeline\n"
               "(Algorithm 3's dependencies, one processor per layer) and the core count allow, from the FLOP model.\n"
               "Issue 3 targets at N = 5, d = n = 1024: shm/serial1 <= 0.6, shm/serialT <= 1, shm/inproc <= 1.05.\n";
  std::cout << "\nper worker, whole run (INIT, both STEPs, QUIT): share of time in the layer machine (compute),\n"
               "blocked in receive (wait), inside send (copy into shared memory, doorbell)\n";
  for (const auto& [title, w] : worker_tables) {
    std::cout << "\n";
    print_workers(title, w, title.rfind("shm", 0) == 0, markdown);
  }

  if (latency) {
    std::cout << "\nTICK/TOCK latency (same run)\n";
    // A run where compute is negligible: an iteration's wall time is the
    // pipeline's cycle, one TICK (layer i to i+1) plus one TOCK (back).
    const synthetic tiny = make_problem(5, 8, 10, act, algo, core::variant::linearized, seed);
    const co::problem tp = to_problem(tiny);
    std::vector<double> tiny_shm, tiny_in, tiny_serial;
    std::vector<co::worker_report> tiny_workers;
    for (int r = 0; r < reps; ++r) {
      timed_run a = run_once(mode::shm, tp, latency_K, threads_T);
      tiny_shm.push_back(a.per_iteration);
      tiny_workers = a.workers;
      tiny_in.push_back(run_once(mode::inproc, tp, latency_K, threads_T).per_iteration);
      tiny_serial.push_back(run_once(mode::serial1, tp, latency_K, threads_T).per_iteration);
    }
    std::vector<shape> payloads{{8, 10}, {256, 256}, latency_shape};
    const rtt_results rt = bare_round_trips(round_trips, payloads);
    double send_s = 0;
    long msgs = 0;
    for (std::size_t i = 1; i < tiny_workers.size(); ++i) {
      send_s += tiny_workers[i].send_s;
      msgs += tiny_workers[i].messages_out;
    }
    // Delivery latency of each TICK and TOCK inside runs over timed endpoints
    // (threads): at tiny d and at the latency shape (default d = n = 1024).
    const latency_summary shm_tiny = protocol_latency(tp, latency_K, true);
    const latency_summary in_tiny = protocol_latency(tp, latency_K, false);
    const synthetic big = make_problem(5, latency_shape.d, latency_shape.n, act, algo, core::variant::linearized, seed);
    const co::problem bp = to_problem(big);
    const latency_summary shm_big = protocol_latency(bp, 2, true);
    const latency_summary in_big = protocol_latency(bp, 2, false);

    table lt({"what", "time", "/ bare shm RTT", "/ bare message_queue RTT", "samples (queued)"});
    auto row = [&](const std::string& what, double s, const std::string& samples) {
      lt.add({what, duration(s), fixed(s / rt.shm, 2), fixed(s / rt.mq, 2), samples});
    };
    row("bare round trip: Boost message_queue, 2 processes", rt.mq, std::to_string(round_trips));
    row("bare round trip: shm transport (open_shm_endpoint), 2 processes", rt.shm, std::to_string(round_trips));
    row("bare round trip: in-process transport, 2 threads", rt.inproc, std::to_string(round_trips));
    for (const auto& [sz, s] : rt.shm_payload) row("shm round trip, " + sz + " payload each way", s, "");
    const std::string big_name = std::to_string(latency_shape.d) + "x" + std::to_string(latency_shape.n);
    auto latency_rows = [&](const std::string& where, const latency_summary& l) {
      row("TICK delivery, " + where, l.tick, std::to_string(l.tick_samples) + " (" + std::to_string(l.tick_queued) + ")");
      row("TOCK delivery, " + where, l.tock, std::to_string(l.tock_samples) + " (" + std::to_string(l.tock_queued) + ")");
      row("  TICK send(), " + where, l.tick_send, "");
      row("  TOCK send(), " + where, l.tock_send, "");
    };
    latency_rows("shm, N=5 d=8 n=10", shm_tiny);
    latency_rows("inproc, N=5 d=8 n=10", in_tiny);
    latency_rows("shm, N=5 " + big_name, shm_big);
    latency_rows("inproc, N=5 " + big_name, in_big);
    row("iteration, shm processes, N=5 d=8 n=10", median(tiny_shm), "");
    row("iteration, inproc, N=5 d=8 n=10", median(tiny_in), "");
    row("  compute of that iteration (serial1, whole sweep)", median(tiny_serial), "");
    row("  mean send() per message, shm processes", msgs > 0 ? send_s / static_cast<double>(msgs) : NAN, std::to_string(msgs));
    lt.print(std::cout, markdown);
    std::cout << "delivery = send() start to receive() return, for messages whose receiver was already waiting (the\n"
              << "others sat queued while it computed); protocol run with every node as a thread of this process over\n"
              << "the named transport. Issue 3 target: TICK/TOCK latency within 2x the bare round trip.\n";
    print_workers("\nshm N=5 d=8 n=10 (latency run)", tiny_workers, true, markdown);
  }
  return 0;
}

}  // namespace
}  // namespace radmm::bench

int main(int argc, char** argv) {
  return radmm::bench::bench_main("radmm-bench-parallel", radmm::bench::usage_text, radmm::bench::run, argc, argv);
}
