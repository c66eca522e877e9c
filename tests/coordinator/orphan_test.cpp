// A coordinator that dies must not leave workers behind, and the next run must
// clear the shared memory it left (Boost 1.74 has no robust mutex, so a dead
// run's objects are removed, never reopened).
#include "process_support.hpp"
#include "protocol/shm.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using namespace radmm::test;

TEST_CASE("killing the coordinator ends its workers and the next run removes the objects it left") {
  const std::string radmm = std::string(RADMM_BINARY_DIR) + "/bin/radmm";
  REQUIRE(fs::exists(radmm));
  const fs::path out = fs::temp_directory_path() / ("radmm-orphan-" + std::to_string(getpid()));
  fs::remove_all(out);
  const pid_t coord = fork();
  REQUIRE(coord >= 0);
  if (coord == 0) {
    // A long parallel run; its output is of no interest.
    std::freopen("/dev/null", "w", stderr);
    execl(radmm.c_str(), radmm.c_str(), "train", "--dataset", "teacher", "--samples", "200", "--layers", "4",
          "--iterations", "1000000", "--metrics-every", "1000000", "--sync-every", "1000000", "--parallel", "shm",
          "--quiet", "--out", out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until all four workers run.
  std::vector<int> workers;
  for (int tries = 0; tries < 500 && workers.size() < 4; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    workers = children_of(coord);
  }
  REQUIRE(workers.size() == 4);
  kill(coord, SIGKILL);
  int status = 0;
  waitpid(coord, &status, 0);
  // PR_SET_PDEATHSIG kills each worker with its parent; they are reparented and reaped by init.
  bool all_gone = false;
  for (int tries = 0; tries < 200 && !all_gone; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    all_gone = true;
    for (int w : workers) all_gone = all_gone && !alive(w);
  }
  CHECK(all_gone);
  // The dead run's objects are still there; a new start removes them.
  CHECK_FALSE(shm_entries_of(coord).empty());
  radmm::protocol::shm_run::remove_stale();
  CHECK(shm_entries_of(coord).empty());
  CHECK_FALSE(fs::exists(out));
}
