// Tier 3: one radmm-worker process per layer over shared memory.
#include "coordinator/process_run.hpp"
#include "coordinator/training.hpp"
#include "core/rng.hpp"
#include "process_support.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <unistd.h>

using namespace radmm;
using namespace radmm::test;
namespace fs = std::filesystem;

namespace {


}  // namespace

TEST_CASE("shared-memory worker processes reproduce the serial run bit for bit") {
  REQUIRE(fs::exists(worker_path()));
  const auto before = shm_entries_of(getpid());
  for (core::algorithm algo : {core::algorithm::two_split, core::algorithm::three_split})
    for (long batch : {0L, 10L}) {
      CAPTURE(core::to_string(algo));
      CAPTURE(batch);
      const auto p = small_problem(5, algo, core::activation::sigmoid);
      coordinator::schedule s;
      s.iterations = 9;
      s.batch_size = batch;
      s.sync_every = 4;
      s.metrics_every = 3;
      const auto serial = coordinator::train_serial(p, s, nullptr);
      coordinator::process_options opt;
      opt.worker_path = worker_path();
      const auto parallel = coordinator::train_processes(p, s, nullptr, opt);
      for (int i = 1; i <= p.arch.layers; ++i) CHECK(serial.W[i] == parallel.W[i]);
      REQUIRE(serial.metrics.size() == parallel.metrics.size());
      for (std::size_t r = 0; r < serial.metrics.size(); ++r) {
        CHECK(serial.metrics[r].L == parallel.metrics[r].L);
        CHECK(serial.metrics[r].mse_test == parallel.metrics[r].mse_test);
      }
    }
  CHECK(shm_entries_of(getpid()) == before);
}

TEST_CASE("a worker killed mid-run stops the run within a second, names the layer and leaves nothing behind") {
  REQUIRE(fs::exists(worker_path()));
  const auto before = shm_entries_of(getpid());
  const auto p = small_problem(4, core::algorithm::two_split, core::activation::relu, 400);
  coordinator::schedule s;
  s.iterations = 1000000;  // far longer than the test waits
  s.sync_every = 1000000;
  s.metrics_every = 0;
  coordinator::process_options opt;
  opt.worker_path = worker_path();
  std::vector<int> pids(5, -1);
  opt.on_spawn = [&](int layer, int pid) { pids[static_cast<std::size_t>(layer)] = pid; };
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    if (pids[2] > 0) kill(pids[2], SIGKILL);
  });
  const auto t0 = std::chrono::steady_clock::now();
  std::string message;
  try {
    coordinator::train_processes(p, s, nullptr, opt);
  } catch (const coordinator::process_error& e) {
    message = e.what();
  }
  killer.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO("message: " << message);
  CHECK(message.find("layer 2") != std::string::npos);
  CHECK(message.find("signal 9") != std::string::npos);
  CHECK(seconds < 0.7 + 1.0);
  // Every worker is gone (reaped) and every shared-memory object removed.
  for (int i = 1; i <= 4; ++i) CHECK(kill(pids[static_cast<std::size_t>(i)], 0) == -1);
  CHECK(shm_entries_of(getpid()) == before);
}

TEST_CASE("a missing worker program is a clear error, not a hang") {
  const auto p = small_problem(3, core::algorithm::two_split, core::activation::relu);
  coordinator::schedule s;
  s.iterations = 2;
  coordinator::process_options opt;
  opt.worker_path = "/nonexistent/radmm-worker";
  CHECK_THROWS_WITH_AS(coordinator::train_processes(p, s, nullptr, opt),
                       doctest::Contains("/nonexistent/radmm-worker"), coordinator::process_error);
}
