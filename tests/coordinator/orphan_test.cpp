// A coordinator that dies must not leave workers behind, and the next run must
// clear the shared memory it left (Boost 1.74 has no robust mutex, so a dead
// run's objects are removed, never reopened).
#include "protocol/shm.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;

namespace {

// Entries of /dev/shm of the runs coordinated by process `pid` (run ids start
// with the coordinator's pid); other tests may run their own at the same time.
std::vector<std::string> radmm_shm_entries(int pid) {
  const std::string prefix = "radmm_" + std::to_string(pid) + "_";
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator("/dev/shm"))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path().filename().string());
  return out;
}

// Pids of live processes whose parent is `parent`.
std::vector<int> children_of(int parent) {
  std::vector<int> kids;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent && state != 'Z')
      kids.push_back(std::stoi(name));
  }
  return kids;
}

bool alive(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] != 'Z';
}

}  // namespace

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
  CHECK_FALSE(radmm_shm_entries(coord).empty());
  radmm::protocol::shm_run::remove_stale();
  CHECK(radmm_shm_entries(coord).empty());
  CHECK_FALSE(fs::exists(out));
}
