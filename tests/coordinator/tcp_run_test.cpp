// Tier 4: one radmm-worker process per layer over TCP: on loopback, with
// workers launched from outside, across network namespaces, and with a worker
// killed mid-run.
#include "coordinator/process_run.hpp"
#include "coordinator/tcp_run.hpp"
#include "coordinator/training.hpp"
#include "core/rng.hpp"
#include "process_support.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

using namespace radmm;
using namespace radmm::test;
namespace fs = std::filesystem;

namespace {

coordinator::schedule small_schedule(long batch) {
  coordinator::schedule s;
  s.iterations = 9;
  s.batch_size = batch;
  s.sync_every = 4;
  s.metrics_every = 3;
  return s;
}

void check_same(const coordinator::run_result& serial, const coordinator::run_result& parallel, int N) {
  REQUIRE(parallel.W.size() == serial.W.size());
  for (int i = 1; i <= N; ++i) CHECK(serial.W[static_cast<std::size_t>(i)] == parallel.W[static_cast<std::size_t>(i)]);
  REQUIRE(serial.metrics.size() == parallel.metrics.size());
  for (std::size_t r = 0; r < serial.metrics.size(); ++r) {
    CHECK(serial.metrics[r].L == parallel.metrics[r].L);
    CHECK(serial.metrics[r].J == parallel.metrics[r].J);
    CHECK(serial.metrics[r].mse_test == parallel.metrics[r].mse_test);
  }
}

struct log_sink {
  std::mutex mutex;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> fn() {
    return [this](const std::string& l) {
      std::lock_guard<std::mutex> lock(mutex);
      lines.push_back(l);
    };
  }
  std::string all() {
    std::lock_guard<std::mutex> lock(mutex);
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

coordinator::tcp_run_options test_options(log_sink& sink) {
  coordinator::tcp_run_options o;
  o.worker_path = worker_path();
  o.heartbeat = std::chrono::milliseconds(200);
  o.peer_timeout = std::chrono::milliseconds(10000);
  o.connect_timeout = std::chrono::milliseconds(30000);
  o.log = sink.fn();
  return o;
}

bool gone(int pid) { return pid > 0 && kill(pid, 0) == -1; }

int run_command(const std::string& cmd) {
  const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string command_output(const std::string& cmd) {
  std::string out;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, f) != nullptr) out += buf;
    ::pclose(f);
  }
  return out;
}

// Network namespaces for one test: a hub with a bridge and one namespace per
// node (coordinator = 0), each with a veth into the bridge and the address
// 10.77.0.(k+1)/24. Nothing touches the host's own namespace: every link is
// created inside ours. Removed on every path, stale ones of dead runs first.
class netns_lab {
 public:
  explicit netns_lab(int nodes) : prefix_("radmmt" + std::to_string(getpid()) + "-") {
    remove_stale();
    auto step = [&](const std::string& cmd) {
      if (run_command(cmd) != 0) throw std::runtime_error("`" + cmd + "` failed");
    };
    try {
      step("ip netns add " + hub());
      created_.push_back(hub());
      step("ip -n " + hub() + " link set lo up");
      step("ip -n " + hub() + " link add br0 type bridge");
      step("ip -n " + hub() + " link set br0 up");
      for (int k = 0; k < nodes; ++k) {
        step("ip netns add " + ns(k));
        created_.push_back(ns(k));
        step("ip -n " + ns(k) + " link set lo up");
        step("ip -n " + hub() + " link add h" + std::to_string(k) + " type veth peer name e0 netns " + ns(k));
        step("ip -n " + hub() + " link set h" + std::to_string(k) + " master br0");
        step("ip -n " + hub() + " link set h" + std::to_string(k) + " up");
        step("ip -n " + ns(k) + " addr add " + address(k) + "/24 dev e0");
        step("ip -n " + ns(k) + " link set e0 up");
      }
    } catch (...) {
      remove();
      throw;
    }
  }
  ~netns_lab() { remove(); }
  netns_lab(const netns_lab&) = delete;
  netns_lab& operator=(const netns_lab&) = delete;

  std::string ns(int k) const { return prefix_ + (k == 0 ? std::string("c") : "w" + std::to_string(k)); }
  std::string hub() const { return prefix_ + "hub"; }
  static std::string address(int k) { return "10.77.0." + std::to_string(k + 1); }

  const std::string& prefix() const { return prefix_; }
  // Namespaces whose names start with `prefix` (for the leak check).
  static std::vector<std::string> list_with(const std::string& prefix) {
    std::vector<std::string> out;
    std::istringstream in(command_output("ip netns list 2>/dev/null"));
    std::string line;
    while (std::getline(in, line)) {
      const std::string name = line.substr(0, line.find(' '));
      if (name.rfind(prefix, 0) == 0) out.push_back(name);
    }
    return out;
  }

  // Moves the calling thread into namespace k (threads have their own).
  void enter(int k) const {
    const std::string path = "/var/run/netns/" + ns(k);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    const int rc = ::setns(fd, CLONE_NEWNET);
    ::close(fd);
    if (rc != 0) throw std::runtime_error("setns " + path + " failed");
  }

 private:
  // Namespaces "radmmt<pid>-..." whose test process is gone.
  static void remove_stale() {
    for (const auto& name : list_with("radmmt")) {
      const long pid = std::strtol(name.c_str() + 6, nullptr, 10);
      if (pid > 0 && kill(static_cast<pid_t>(pid), 0) == -1) run_command("ip netns del " + name);
    }
  }
  void remove() noexcept {
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) run_command("ip netns del " + *it);
    created_.clear();
  }

  std::string prefix_;
  std::vector<std::string> created_;
};

}  // namespace

TEST_CASE("TCP worker processes over loopback reproduce the serial run bit for bit, two- and three-splitting") {
  REQUIRE(fs::exists(worker_path()));
  for (core::algorithm algo : {core::algorithm::two_split, core::algorithm::three_split})
    for (long batch : {0L, 10L}) {
      CAPTURE(core::to_string(algo));
      CAPTURE(batch);
      const auto p = small_problem(5, algo, core::activation::sigmoid);
      const auto s = small_schedule(batch);
      const auto serial = coordinator::train_serial(p, s, nullptr);
      log_sink sink;
      std::vector<int> pids(6, -1);
      auto opt = test_options(sink);
      opt.on_spawn = [&](int layer, int pid) { pids[static_cast<std::size_t>(layer)] = pid; };
      const auto parallel = coordinator::train_tcp(p, s, nullptr, opt);
      INFO(sink.all());
      check_same(serial, parallel, p.arch.layers);
      for (int i = 1; i <= 5; ++i) CHECK(gone(pids[static_cast<std::size_t>(i)]));
    }
}

TEST_CASE("a TCP worker killed mid-run stops the run quickly, names the layer and leaves no process behind") {
  REQUIRE(fs::exists(worker_path()));
  const auto p = small_problem(4, core::algorithm::two_split, core::activation::relu, 400);
  coordinator::schedule s;
  s.iterations = 1000000;  // far longer than the test waits
  s.sync_every = 1000000;
  s.metrics_every = 0;
  log_sink sink;
  auto opt = test_options(sink);
  std::vector<int> pids(5, -1);
  opt.on_spawn = [&](int layer, int pid) { pids[static_cast<std::size_t>(layer)] = pid; };
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    if (pids[2] > 0) kill(pids[2], SIGKILL);
  });
  const auto t0 = std::chrono::steady_clock::now();
  std::string message;
  try {
    coordinator::train_tcp(p, s, nullptr, opt);
  } catch (const coordinator::process_error& e) {
    message = e.what();
  }
  killer.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO("message: " << message);
  INFO(sink.all());
  CHECK(message.find("layer 2") != std::string::npos);
  CHECK(message.find("signal 9") != std::string::npos);
  CHECK(seconds < 1.0 + 2.0);
  for (int i = 1; i <= 4; ++i) CHECK(gone(pids[static_cast<std::size_t>(i)]));
}

TEST_CASE("workers launched from outside join with a token file, and a stranger with the wrong token is refused") {
  REQUIRE(fs::exists(worker_path()));
  const auto p = small_problem(3, core::algorithm::three_split, core::activation::tanh);
  const auto s = small_schedule(0);
  const auto serial = coordinator::train_serial(p, s, nullptr);
  const fs::path dir = fs::temp_directory_path() / ("radmm-tcp-test-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string token = (dir / "token").string(), wrong = (dir / "wrong").string();
  std::ofstream(token) << "s3cret\n";
  std::ofstream(wrong) << "guess\n";
  log_sink sink;
  auto opt = test_options(sink);
  opt.spawn_workers = false;
  opt.token_file = token;
  opt.listen = "127.0.0.1:0";
  std::vector<pid_t> launched;
  // Plays the cluster launcher: ranks 0..2 via SLURM_PROCID, plus an impostor.
  opt.on_listening = [&](const std::string& where) {
    auto launch = [&](const std::vector<std::string>& args, const std::string& rank) {
      // Everything allocated before fork(): the child of a threaded process only execs.
      std::vector<std::string> env_words;
      for (char** e = environ; *e != nullptr; ++e)
        if (std::string(*e).rfind("SLURM_PROCID=", 0) != 0 && std::string(*e).rfind("RADMM_TCP_TOKEN=", 0) != 0)
          env_words.emplace_back(*e);
      if (!rank.empty()) env_words.push_back("SLURM_PROCID=" + rank);
      std::vector<char*> argv, envp;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      for (const auto& e : env_words) envp.push_back(const_cast<char*>(e.c_str()));
      envp.push_back(nullptr);
      const pid_t pid = fork();
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execve(argv[0], argv.data(), envp.data());
        _exit(127);
      }
      launched.push_back(pid);
    };
    launch({worker_path(), "--connect", where, "--layer", "2", "--token-file", wrong}, "");
    for (int rank = 0; rank < 3; ++rank)
      launch({worker_path(), "--connect", where, "--token-file", token, "--heartbeat-ms", "200"}, std::to_string(rank));
  };
  const auto parallel = coordinator::train_tcp(p, s, nullptr, opt);
  std::vector<int> codes;
  for (pid_t pid : launched) {
    int status = 0;
    waitpid(pid, &status, 0);
    codes.push_back(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  fs::remove_all(dir);
  INFO(sink.all());
  check_same(serial, parallel, p.arch.layers);
  REQUIRE(codes.size() == 4);
  CHECK(codes[0] == coordinator::worker_exit::io);  // the impostor: refused
  CHECK(codes[1] == 0);
  CHECK(codes[2] == 0);
  CHECK(codes[3] == 0);
  CHECK(sink.all().find("wrong token") != std::string::npos);
}

TEST_CASE("training across network namespaces (coordinator and each layer on its own stack) equals serial") {
  REQUIRE(fs::exists(worker_path()));
  const int N = 3;
  const auto p = small_problem(N, core::algorithm::two_split, core::activation::sigmoid);
  const auto s = small_schedule(0);
  const auto serial = coordinator::train_serial(p, s, nullptr);
  log_sink sink;
  auto opt = test_options(sink);
  std::unique_ptr<netns_lab> lab;
  std::vector<std::string> leftover;
  try {
    lab = std::make_unique<netns_lab>(N + 1);
  } catch (const std::exception& e) {
    MESSAGE("cannot create network namespaces (" << e.what()
                                                 << "); NOT testing across stacks, running over loopback instead");
  }
  coordinator::run_result parallel;
  if (lab) {
    opt.listen = netns_lab::address(0) + ":0";
    std::string listening, book;
    opt.on_listening = [&](const std::string& where) { listening = where; };
    opt.on_address_book = [&](const std::string& b) { book = b; };
    opt.worker_prefix = [&](int layer) { return std::vector<std::string>{"ip", "netns", "exec", lab->ns(layer)}; };
    std::string failure;
    // The coordinator runs in a thread that has entered namespace 0; the
    // workers it forks start there and `ip netns exec` moves each into its own.
    std::thread coordinator_thread([&] {
      try {
        lab->enter(0);
        parallel = coordinator::train_tcp(p, s, nullptr, opt);
      } catch (const std::exception& e) {
        failure = e.what();
      }
    });
    coordinator_thread.join();
    INFO(sink.all());
    const std::string prefix = lab->prefix();
    lab.reset();
    leftover = netns_lab::list_with(prefix);
    REQUIRE_MESSAGE(failure.empty(), failure);
    // Every layer advertised its own namespace's address, so TICK and TOCK
    // crossed the bridge between stacks.
    MESSAGE("across namespaces: coordinator at " << listening << ", address book:\n" << book);
    CHECK(listening.rfind(netns_lab::address(0) + ":", 0) == 0);
    for (int i = 1; i <= N; ++i)
      CHECK(book.find(std::to_string(i) + " " + netns_lab::address(i) + " ") != std::string::npos);
  } else {
    parallel = coordinator::train_tcp(p, s, nullptr, opt);
  }
  check_same(serial, parallel, N);
  CHECK(leftover.empty());
}
