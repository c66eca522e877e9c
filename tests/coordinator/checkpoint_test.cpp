// Checkpoints: a run stopped at any checkpoint and resumed ends with the
// weights and metrics of an uninterrupted run, bit for bit, whichever engine
// wrote the checkpoint and whichever resumes it.
#include "coordinator/checkpoint.hpp"
#include "coordinator/inproc_run.hpp"
#include "coordinator/process_run.hpp"
#include "coordinator/training.hpp"
#include "core/data.hpp"
#include "core/npy.hpp"
#include "core/rng.hpp"
#include "process_support.hpp"
#include "core/updates.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace radmm;
using namespace radmm::coordinator;
namespace fs = std::filesystem;
using radmm::test::alive;
using radmm::test::children_of;

namespace {

problem make_problem(core::algorithm algo) {
  problem p;
  p.arch = core::architecture{4, 3, 5, 2, core::activation::tanh};
  p.hp = core::preset("default", algo, p.arch.act, 4, 5);
  p.hp.tau = p.hp.nu = 50;
  p.hp.ef_tau = 1.01;
  p.hp.ef_nu = 1.02;
  core::rng gen(21);
  auto fill = [&](core::mat& m, Eigen::Index r, Eigen::Index c) {
    m.resize(r, c);
    for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] = gen.uniform(-1, 1);
  };
  fill(p.X_train, 3, 26);
  fill(p.Y_train, 2, 26);
  fill(p.X_test, 3, 6);
  fill(p.Y_test, 2, 6);
  p.W0 = core::kaiming_normal(p.arch, 22);
  return p;
}

struct temp_dir {
  fs::path path;
  temp_dir() : path(fs::temp_directory_path() / ("radmm-ckpt-" + std::to_string(getpid()) + "-" + std::to_string(counter++))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
  static inline int counter = 0;
};

enum class engine { serial, inproc, shm };

run_result run(engine e, const problem& p, const schedule& s, const run_control* c) {
  switch (e) {
    case engine::serial: return train_serial(p, s, nullptr, c);
    case engine::inproc: return train_inproc(p, s, nullptr, {}, c);
    case engine::shm: {
      process_options opt;
      opt.worker_path = radmm::test::worker_path();
      return train_processes(p, s, nullptr, opt, c);
    }
  }
  return {};
}

void expect_same(const run_result& a, const run_result& b) {
  for (std::size_t i = 1; i < a.W.size(); ++i) CHECK(a.W[i] == b.W[i]);
  REQUIRE(a.metrics.size() == b.metrics.size());
  for (std::size_t r = 0; r < a.metrics.size(); ++r) {
    CHECK(a.metrics[r].iteration == b.metrics[r].iteration);
    CHECK(a.metrics[r].L == b.metrics[r].L);
    CHECK(a.metrics[r].mse_test == b.metrics[r].mse_test);
  }
}

}  // namespace

TEST_CASE("a run stopped after a checkpoint and resumed equals the uninterrupted run") {
  for (core::algorithm algo : {core::algorithm::two_split, core::algorithm::three_split})
    for (long batch : {0L, 10L})
      for (engine writer : {engine::serial, engine::inproc, engine::shm})
        for (engine reader : {engine::serial, engine::shm}) {
          CAPTURE(core::to_string(algo));
          CAPTURE(batch);
          CAPTURE(static_cast<int>(writer));
          CAPTURE(static_cast<int>(reader));
          const problem p = make_problem(algo);
          schedule s;
          s.iterations = 12;
          s.batch_size = batch;
          s.updates_per_batch = 2;
          s.sync_every = 3;
          s.metrics_every = 2;
          temp_dir full_dir, cut_dir;
          run_control full;
          full.checkpoint_root = (full_dir.path / "checkpoints").string();
          full.checkpoint_every = 4;
          full.config_digest = "test";
          const run_result uninterrupted = run(writer, p, s, &full);
          // Stop at the second STEP boundary after the first checkpoint exists.
          run_control cut = full;
          cut.checkpoint_root = (cut_dir.path / "checkpoints").string();
          int boundaries = 0;
          cut.stop_requested = [&] {
            return fs::exists(cut.checkpoint_root) && !fs::is_empty(cut.checkpoint_root) && ++boundaries > 1;
          };
          const run_result stopped = run(writer, p, s, &cut);
          REQUIRE(stopped.interrupted);
          std::vector<std::string> skipped;
          auto ckpt = load_latest_checkpoint(cut.checkpoint_root, p.arch.layers, "test", &skipped);
          REQUIRE(ckpt.has_value());
          CHECK(skipped.empty());
          CHECK(ckpt->updates > 0);
          CHECK(ckpt->updates < uninterrupted.updates);
          run_control again = full;
          again.checkpoint_root = cut.checkpoint_root;
          again.resume = &*ckpt;
          const run_result resumed = run(reader, p, s, &again);
          expect_same(uninterrupted, resumed);
        }
}

TEST_CASE("a damaged checkpoint is named and the previous complete one is used") {
  const problem p = make_problem(core::algorithm::two_split);
  schedule s;
  s.iterations = 12;
  temp_dir dir;
  run_control c;
  c.checkpoint_root = (dir.path / "checkpoints").string();
  c.checkpoint_every = 4;
  c.config_digest = "digest";
  // Keep every checkpoint: copy each one aside as it completes.
  run_result r = train_serial(p, s, nullptr, &c);
  // Only the newest survives pruning; make an older copy by hand from it, then
  // damage the newest.
  std::vector<fs::path> ckpts;
  for (const auto& e : fs::directory_iterator(c.checkpoint_root)) ckpts.push_back(e.path());
  REQUIRE(ckpts.size() == 1);
  const fs::path newest = ckpts[0];
  const fs::path older = fs::path(c.checkpoint_root) / "ckpt-000000000000";
  fs::copy(newest, older, fs::copy_options::recursive);
  {
    std::fstream f(newest / "layer-2.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  std::vector<std::string> skipped;
  auto ckpt = load_latest_checkpoint(c.checkpoint_root, p.arch.layers, "digest", &skipped);
  REQUIRE(ckpt.has_value());
  CHECK(ckpt->dir == older.string());
  REQUIRE(skipped.size() == 1);
  CHECK(skipped[0].find("layer-2.bin") != std::string::npos);
  CHECK(skipped[0].find("damaged") != std::string::npos);
  // A checkpoint of another configuration is not taken either.
  CHECK_FALSE(load_latest_checkpoint(c.checkpoint_root, p.arch.layers, "other", nullptr).has_value());
  // An incomplete one (no manifest) is skipped with its reason.
  fs::remove(older / "manifest.txt");
  skipped.clear();
  CHECK_FALSE(load_latest_checkpoint(c.checkpoint_root, p.arch.layers, "digest", &skipped).has_value());
  CHECK(skipped.size() == 2);
}

TEST_CASE("checkpoint blocks reject truncation, wrong magic and bit flips") {
  core::block_state b;
  b.layer = 2;
  b.iteration = 7;
  b.tau = 1.5;
  b.W = core::mat::Random(3, 4);
  b.V = core::mat::Random(3, 5);
  const std::string bytes = core::encode_block(b);
  const core::block_state back = core::decode_block(bytes, "b");
  CHECK(back.W == b.W);
  CHECK(back.V == b.V);
  CHECK(back.iteration == 7);
  CHECK_THROWS_WITH_AS(core::decode_block(bytes.substr(0, bytes.size() - 9), "b.bin"), doctest::Contains("b.bin"),
                       core::data_error);
  CHECK_THROWS_WITH_AS(core::decode_block("not a block at all, no", "x.bin"), doctest::Contains("not a radmm"),
                       core::data_error);
  core::rng gen(3);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string damaged = bytes;
    damaged[gen.below(damaged.size())] ^= static_cast<char>(1 + gen.below(255));
    CHECK_THROWS_AS(core::decode_block(damaged, "fuzz"), core::data_error);
  }
}

namespace {

int run_radmm(const std::vector<std::string>& args, const std::function<void(int pid)>& while_running) {
  const std::string radmm = std::string(RADMM_BINARY_DIR) + "/bin/radmm";
  const pid_t pid = fork();
  if (pid == 0) {
    std::freopen("/dev/null", "w", stderr);
    std::vector<char*> argv{const_cast<char*>(radmm.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(radmm.c_str(), argv.data());
    _exit(127);
  }
  if (while_running) while_running(pid);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string file_bytes(const fs::path& p) { return core::read_file(p.string()); }

}  // namespace

TEST_CASE("with --max-restarts a run whose worker is killed ends with the uninterrupted weights") {
  temp_dir dir;
  const std::vector<std::string> common = {"train", "--dataset", "teacher", "--samples", "400", "--layers", "4",
                                           "--iterations", "400", "--checkpoint-every", "20", "--metrics-every", "100",
                                           "--quiet"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  REQUIRE(run_radmm(with({"--out", (dir.path / "reference").string()}), nullptr) == 0);
  bool killed = false;
  const int rc = run_radmm(with({"--parallel", "shm", "--max-restarts", "2", "--out", (dir.path / "killed").string()}),
                           [&](int pid) {
                             // Once a checkpoint exists, kill layer 2's worker.
                             const fs::path ck = dir.path / "killed" / "checkpoints";
                             for (int tries = 0; tries < 3000 && !killed; ++tries) {
                               std::this_thread::sleep_for(std::chrono::milliseconds(5));
                               std::error_code ec;
                               if (!fs::exists(ck, ec) || fs::is_empty(ck, ec)) continue;
                               const auto kids = children_of(pid);
                               if (kids.size() < 2) continue;
                               kill(kids[1], SIGKILL);
                               killed = true;
                             }
                           });
  CHECK(killed);
  CHECK(rc == 0);
  for (int i = 1; i <= 4; ++i) {
    const std::string name = "W_" + std::to_string(i) + ".npy";
    CHECK(file_bytes(dir.path / "killed" / name) == file_bytes(dir.path / "reference" / name));
  }
}

TEST_CASE("SIGTERM stops a parallel run at a STEP boundary, writes a checkpoint when asked and cleans up") {
  temp_dir dir;
  const fs::path out = dir.path / "run";
  int coordinator = 0;
  std::vector<int> workers;
  const int rc = run_radmm({"train", "--dataset", "teacher", "--samples", "400", "--layers", "4", "--iterations",
                            "1000000", "--checkpoint-every", "10", "--sync-every", "10", "--metrics-every", "1000",
                            "--checkpoint-on-exit", "--parallel", "shm", "--quiet", "--out", out.string()},
                           [&](int pid) {
                             coordinator = pid;
                             for (int tries = 0; tries < 2000 && workers.size() < 4; ++tries) {
                               std::this_thread::sleep_for(std::chrono::milliseconds(5));
                               workers = children_of(pid);
                             }
                             std::this_thread::sleep_for(std::chrono::milliseconds(300));
                             kill(pid, SIGTERM);
                           });
  CHECK(rc == 130);
  REQUIRE(workers.size() == 4);
  for (int w : workers) CHECK_FALSE(alive(w));
  CHECK(radmm::test::shm_entries_of(coordinator).empty());
  CHECK(fs::exists(out / "config.txt"));
  CHECK_FALSE(fs::is_empty(out / "checkpoints"));
}

TEST_CASE("a residual past the bound stops serial and parallel runs naming the same layer and iteration") {
  const problem p = make_problem(core::algorithm::three_split);
  schedule s;
  s.iterations = 6;
  s.residual_bound = 1e-9;  // far below what the first iteration leaves
  std::string serial_what, parallel_what;
  try {
    train_serial(p, s, nullptr);
  } catch (const core::divergence_error& e) {
    serial_what = e.what();
    CHECK(e.layer >= 1);
    CHECK(e.iteration == 1);
  }
  try {
    train_inproc(p, s, nullptr);
  } catch (const core::divergence_error& e) {
    parallel_what = e.what();
  }
  CHECK_FALSE(serial_what.empty());
  CHECK(serial_what == parallel_what);
  CHECK(serial_what.find("above the bound") != std::string::npos);
  s.residual_bound = 0;  // off: the same run finishes
  CHECK_NOTHROW(train_serial(p, s, nullptr));
}
