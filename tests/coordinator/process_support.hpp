#pragma once
// Helpers shared by the multi-process coordinator tests: where the worker
// program is, a small seeded problem, and what /proc and /dev/shm say about
// the processes and shared-memory objects of a run.
#include "coordinator/training.hpp"
#include "core/model.hpp"
#include "core/rng.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace radmm::test {

inline std::string worker_path() { return std::string(RADMM_BINARY_DIR) + "/bin/radmm-worker"; }

// A small seeded problem: d0 = 4, width 6, q = 2, n train columns, 9 test columns.
inline coordinator::problem small_problem(int N, core::algorithm algo, core::activation act, int n = 31) {
  coordinator::problem p;
  p.arch = core::architecture{N, 4, 6, 2, act};
  p.hp = core::preset("default", algo, act, N, 6);
  p.hp.tau = p.hp.nu = 100;
  core::rng gen(5);
  auto fill = [&](core::mat& m, Eigen::Index r, Eigen::Index c) {
    m.resize(r, c);
    for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] = gen.uniform(-1, 1);
  };
  fill(p.X_train, 4, n);
  fill(p.Y_train, 2, n);
  fill(p.X_test, 4, 9);
  fill(p.Y_test, 2, 9);
  p.W0 = core::kaiming_normal(p.arch, 6);
  return p;
}

// /dev/shm entries of the runs coordinated by process `pid` (run ids start
// with the coordinator's pid); other tests may run their own at the same time.
inline std::vector<std::string> shm_entries_of(int pid) {
  const std::string prefix = "radmm_" + std::to_string(pid) + "_";
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm"))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path().filename().string());
  return out;
}

// State and parent of a process from /proc/PID/stat; comm may hold spaces,
// so the fields are read after the last ')'. False when it is gone.
inline bool proc_stat(const std::filesystem::path& stat_path, char& state, int& ppid) {
  std::ifstream stat(stat_path);
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2;
}

// True while `pid` runs (a zombie counts as gone).
inline bool alive(int pid) {
  char state = 0;
  int ppid = 0;
  return proc_stat("/proc/" + std::to_string(pid) + "/stat", state, ppid) && state != 'Z';
}

// Pids of live processes whose parent is `parent`.
inline std::vector<int> children_of(int parent) {
  std::vector<int> kids;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (proc_stat(e.path() / "stat", state, ppid) && ppid == parent && state != 'Z') kids.push_back(std::stoi(name));
  }
  return kids;
}

}  // namespace radmm::test
