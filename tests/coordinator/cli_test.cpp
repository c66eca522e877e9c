// The `radmm` command line, end to end: every test runs the real binary as a
// child process in a fresh temporary directory and looks only at what a user
// sees: the exit code, stdout, stderr and the files left on disk.
//
// Layout of each test's directory:
//   in/          inputs the test writes (CSV files, config files, model copies)
//   runs/        where radmm is asked to write (--out); checked for leftovers
//   stdout.txt, stderr.txt   the child's output
// Bad-input cases check the exit code (2 for user errors), that stderr names
// the file with line and column (or the flag), and that nothing was written:
// no output directory, no `*.tmp-*` sibling, no other stray file.
// docs/bad-input.md lists every malformed-input case and where it is tested.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::string radmm_path() { return std::string(RADMM_BINARY_DIR) + "/bin/radmm"; }

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
  REQUIRE(out.good());
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t i = 0;
  for (;;) {
    const std::size_t j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

struct run_result {
  int code = -1;  // exit status, or 128 + signal
  std::string out, err;
  pid_t pid = -1;
};

// A fresh directory per test, removed at the end.
struct scratch {
  fs::path root, in, runs;

  scratch() {
    static int counter = 0;
    root = fs::temp_directory_path() /
           ("radmm-cli-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    fs::remove_all(root);
    in = root / "in";
    runs = root / "runs";
    fs::create_directories(in);
    fs::create_directories(runs);
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;

  std::string input(const std::string& name, const std::string& contents) const {
    write_text(in / name, contents);
    return (in / name).string();
  }
  std::string run_dir(const std::string& name) const { return (runs / name).string(); }

  // Runs `radmm args...` with the scratch root as working directory, stdin from
  // /dev/null, stdout and stderr to files. Kills the child after `timeout`.
  // `as_user` > 0 (only when running as root): the child drops to that uid/gid
  // before exec; it exits 126 when it cannot.
  run_result radmm(const std::vector<std::string>& args, std::chrono::seconds timeout = std::chrono::seconds(120),
                   uid_t as_user = 0) const {
    const std::string exe = radmm_path();
    const std::string out_file = (root / "stdout.txt").string(), err_file = (root / "stderr.txt").string();
    const std::string cwd = root.string();
    std::vector<std::string> argv_s{exe};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Only async-signal-safe calls between fork and exec.
      const int in_fd = ::open("/dev/null", O_RDONLY);
      const int out_fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int err_fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (in_fd < 0 || out_fd < 0 || err_fd < 0 || ::chdir(cwd.c_str()) != 0) ::_exit(126);
      if (as_user > 0 && (::setgroups(0, nullptr) != 0 || ::setgid(static_cast<gid_t>(as_user)) != 0 ||
                          ::setuid(as_user) != 0))
        ::_exit(126);
      ::dup2(in_fd, 0);
      ::dup2(out_fd, 1);
      ::dup2(err_fd, 2);
      ::close(in_fd);
      ::close(out_fd);
      ::close(err_fd);
      ::execv(exe.c_str(), argv.data());
      ::_exit(127);
    }
    run_result r;
    r.pid = pid;
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) break;
      if (w != 0) FAIL("waitpid failed: " << std::strerror(errno));  // not a per-poll assertion
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        FAIL("radmm did not finish within " << timeout.count() << " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_text(root / "stdout.txt");
    r.err = read_text(root / "stderr.txt");
    fs::remove(root / "stdout.txt");
    fs::remove(root / "stderr.txt");
    return r;
  }

  // Names in runs/ (sorted).
  std::set<std::string> run_entries() const {
    std::set<std::string> s;
    for (const auto& e : fs::directory_iterator(runs)) s.insert(e.path().filename().string());
    return s;
  }

  // Anything under the scratch root that looks like a temporary of an atomic write.
  std::vector<std::string> temporaries() const {
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      const std::string name = e.path().filename().string();
      if (contains(name, ".tmp-") || contains(name, ".old-")) found.push_back(e.path().string());
    }
    return found;
  }

  // The scratch root holds only in/ and runs/: radmm wrote nothing next to them
  // (e.g. a default "radmm-out" in its working directory).
  std::set<std::string> root_entries() const {
    std::set<std::string> s;
    for (const auto& e : fs::directory_iterator(root)) s.insert(e.path().filename().string());
    return s;
  }
};

// A small deterministic regression set: columns a, b, c and target y.
std::string make_csv(int rows, char sep = ',', bool quoted_header = false) {
  std::string s;
  const char* names[] = {"a", "b", "c", "y"};
  for (int c = 0; c < 4; ++c) {
    if (c) s += sep;
    s += quoted_header ? "\"" + std::string(names[c]) + "\"" : std::string(names[c]);
  }
  s += "\n";
  char buf[128];
  for (int r = 0; r < rows; ++r) {
    const double a = std::sin(0.7 * r), b = std::cos(1.3 * r), c = static_cast<double>(r % 7) / 7.0;
    const double y = a * b + 0.5 * c;
    std::snprintf(buf, sizeof buf, "%.17g%c%.17g%c%.17g%c%.17g\n", a, sep, b, sep, c, sep, y);
    s += buf;
  }
  return s;
}

// The same kind of rows for a model trained on the teacher data (x1..x3, y).
std::string make_teacher_like_csv(int rows, bool with_target) {
  std::string s = with_target ? "x1,x2,x3,y\n" : "x1,x2,x3\n";
  char buf[128];
  for (int r = 0; r < rows; ++r) {
    const double x1 = std::sin(0.37 * r), x2 = std::cos(0.91 * r), x3 = 0.1 * (r % 5) - 0.2;
    if (with_target)
      std::snprintf(buf, sizeof buf, "%.17g,%.17g,%.17g,%.17g\n", x1, x2, x3, 0.3 * x1 - x2 * x3);
    else
      std::snprintf(buf, sizeof buf, "%.17g,%.17g,%.17g\n", x1, x2, x3);
    s += buf;
  }
  return s;
}

// Flags of a tiny run on the built-in teacher data (3 features + bias, N = 3).
std::vector<std::string> teacher_args(const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"train", "--dataset", "teacher", "--samples", "48", "--features", "3",
                                "--layers", "3", "--width", "8", "--iterations", "4", "--seed", "7",
                                "--quiet", "--out", out};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

void require_ok(const run_result& r) {
  INFO("stdout: " << r.out);
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
}

// W_1.npy .. W_N.npy of two model directories are the same bytes.
void check_same_weights(const fs::path& a, const fs::path& b, int layers) {
  for (int i = 1; i <= layers; ++i) {
    const std::string name = "W_" + std::to_string(i) + ".npy";
    CAPTURE(name);
    const std::string wa = read_text(a / name), wb = read_text(b / name);
    REQUIRE_FALSE(wa.empty());
    CHECK(wa == wb);
  }
}

// metrics.csv without its wall-clock column.
std::vector<std::vector<std::string>> metrics_without_seconds(const fs::path& dir) {
  const std::vector<std::string> rows = lines_of(read_text(dir / "metrics.csv"));
  REQUIRE(rows.size() >= 2);
  const std::vector<std::string> header = split(rows[0], ',');
  std::size_t sec = header.size();
  for (std::size_t c = 0; c < header.size(); ++c)
    if (header[c] == "seconds") sec = c;
  REQUIRE(sec < header.size());
  std::vector<std::vector<std::string>> out;
  for (const auto& row : rows) {
    std::vector<std::string> f = split(row, ',');
    REQUIRE(f.size() == header.size());
    f.erase(f.begin() + static_cast<std::ptrdiff_t>(sec));
    out.push_back(f);
  }
  return out;
}

// /dev/shm objects of the radmm run with coordinator pid `pid`.
std::vector<std::string> shm_objects_of(pid_t pid) {
  std::vector<std::string> out;
  const std::string prefix = "radmm_" + std::to_string(pid) + "_";
  for (const auto& e : fs::directory_iterator("/dev/shm"))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path().filename().string());
  return out;
}

// Live processes started for the run of coordinator `pid`: radmm-worker gets
// "--run-id <pid>_<nonce>" on its command line.
std::vector<std::string> processes_of(pid_t pid) {
  std::vector<std::string> out;
  const std::string prefix = "--run-id " + std::to_string(pid) + "_";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = read_text(e.path() / "cmdline");
    for (char& ch : cmd)
      if (ch == '\0') ch = ' ';
    if (contains(cmd, prefix)) out.push_back(name + ": " + cmd);
  }
  return out;
}

double parse_double(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  REQUIRE_MESSAGE(end == s.c_str() + s.size(), "not a number: '" << s << "'");
  return v;
}

// A failed run: the exit code, every expected piece of stderr, and nothing
// written (no output directory, no temporary sibling, nothing next to them).
void check_refused(const scratch& s, const run_result& r, int code, const std::vector<std::string>& in_err,
                   const std::set<std::string>& runs_before = {}) {
  INFO("stderr: " << r.err);
  CHECK(r.code == code);
  for (const auto& piece : in_err) {
    CAPTURE(piece);
    CHECK(contains(r.err, piece));
  }
  CHECK(r.err.rfind("radmm: ", 0) == 0);
  CHECK(r.out.empty());
  CHECK(s.run_entries() == runs_before);
  CHECK(s.temporaries().empty());
  CHECK(s.root_entries() == std::set<std::string>{"in", "runs"});
}

}  // namespace

// ------------------------------------------------------------- end to end

TEST_CASE("cli: train writes a complete model directory, and eval's MSE is predict's") {
  REQUIRE(fs::exists(radmm_path()));
  scratch s;
  const std::string model = s.run_dir("model");
  const run_result tr = s.radmm(teacher_args(model));
  require_ok(tr);
  CHECK(tr.out.empty());
  CHECK(tr.err.empty());  // --quiet and no warnings
  for (const char* f : {"model.json", "W_1.npy", "W_2.npy", "W_3.npy", "metrics.csv", "config.txt"}) {
    CAPTURE(f);
    CHECK(fs::is_regular_file(fs::path(model) / f));
  }
  CHECK_FALSE(fs::exists(fs::path(model) / "W_4.npy"));
  CHECK(s.run_entries() == std::set<std::string>{"model"});
  CHECK(s.temporaries().empty());
  CHECK(read_text(fs::path(model) / "W_1.npy").rfind("\x93NUMPY", 0) == 0);
  const auto metrics = lines_of(read_text(fs::path(model) / "metrics.csv"));
  REQUIRE(metrics.size() >= 2);
  CHECK(metrics[0] == "k,J,J_admm,L,res_N,res_U,res_pen,mse_train,mse_test,tau1,nu1,seconds");
  CHECK(split(metrics.back(), ',')[0] == "4");
  CHECK(contains(read_text(fs::path(model) / "model.json"), "\"radmm-model\""));

  const int rows = 25;
  const std::string data = s.input("eval.csv", make_teacher_like_csv(rows, true));
  const run_result ev = s.radmm({"eval", "--model", model, "--data", data});
  require_ok(ev);
  const auto ev_lines = lines_of(ev.out);
  REQUIRE(ev_lines.size() == 2);
  REQUIRE(ev_lines[0].rfind("mse ", 0) == 0);
  CHECK(ev_lines[1] == "rows " + std::to_string(rows));
  const double eval_mse = parse_double(ev_lines[0].substr(4));

  const std::string pred_file = s.run_dir("pred.csv");
  const run_result pr = s.radmm({"predict", "--model", model, "--data", data, "--out", pred_file});
  require_ok(pr);
  const auto pred = lines_of(read_text(pred_file));
  REQUIRE(pred.size() == static_cast<std::size_t>(rows) + 1);
  CHECK(pred[0] == "y");
  const auto truth = lines_of(read_text(data));
  double sum = 0;
  for (int r = 1; r <= rows; ++r) {
    const double p = parse_double(pred[static_cast<std::size_t>(r)]);
    const double y = parse_double(split(truth[static_cast<std::size_t>(r)], ',')[3]);
    sum += (p - y) * (p - y);
  }
  const double mse = sum / rows;
  CAPTURE(mse);
  CAPTURE(eval_mse);
  CHECK(mse > 0);
  CHECK(std::abs(eval_mse - mse) <= 1e-9 * mse);

  // Without the target column predict still writes one row per input row.
  const std::string features_only = s.input("x.csv", make_teacher_like_csv(7, false));
  const std::string pred2 = s.run_dir("pred2.csv");
  require_ok(s.radmm({"predict", "--model", model, "--data", features_only, "--out", pred2}));
  const auto p2 = lines_of(read_text(pred2));
  REQUIRE(p2.size() == 8);
  for (std::size_t r = 1; r < p2.size(); ++r) CHECK(std::isfinite(parse_double(p2[r])));
  // The same rows predict the same values with and without the target column
  // (to rounding: the matrix products are blocked differently for 7 and 25 columns).
  for (std::size_t r = 1; r < p2.size(); ++r) {
    const double a = parse_double(p2[r]), b = parse_double(pred[r]);
    CHECK(std::abs(a - b) <= 1e-12 * std::max(1.0, std::abs(b)));
  }
  CHECK(s.temporaries().empty());
  CHECK(s.root_entries() == std::set<std::string>{"in", "runs"});
}

TEST_CASE("cli: the same seed twice, and --config of a run's config.txt, give byte-identical weights") {
  scratch s;
  const std::string a = s.run_dir("a"), b = s.run_dir("b"), c = s.run_dir("c");
  require_ok(s.radmm(teacher_args(a)));
  require_ok(s.radmm(teacher_args(b)));
  check_same_weights(a, b, 3);
  CHECK(metrics_without_seconds(a) == metrics_without_seconds(b));

  // config.txt holds every resolved setting, including the data-dependent step-sizes.
  const std::string cfg = read_text(fs::path(a) / "config.txt");
  CHECK(contains(cfg, "\nseed = 7\n"));
  CHECK(contains(cfg, "\ntau = "));
  CHECK(contains(cfg, "\nnu = "));
  require_ok(s.radmm({"train", "--config", (fs::path(a) / "config.txt").string(), "--out", c}));
  check_same_weights(a, c, 3);
  CHECK(metrics_without_seconds(a) == metrics_without_seconds(c));
  CHECK(read_text(fs::path(c) / "config.txt") == [&] {
    // Only the out line differs.
    std::string t = cfg;
    const std::string from = "\nout = " + a + "\n", to = "\nout = " + c + "\n";
    const auto at = t.find(from);
    REQUIRE(at != std::string::npos);
    t.replace(at, from.size(), to);
    return t;
  }());

  // A different seed gives different weights (the comparison above is not vacuous).
  const std::string d = s.run_dir("d");
  auto args = teacher_args(d);
  REQUIRE(args[13] == "--seed");
  args[14] = "8";
  require_ok(s.radmm(args));
  CHECK(read_text(fs::path(a) / "W_1.npy") != read_text(fs::path(d) / "W_1.npy"));
  CHECK(s.temporaries().empty());
}

TEST_CASE("cli: serial, --parallel inproc and --parallel shm runs are byte-identical") {
  REQUIRE(fs::exists(std::string(RADMM_BINARY_DIR) + "/bin/radmm-worker"));
  scratch s;
  for (const char* algo : {"2s", "3s"}) {
    CAPTURE(algo);
    const std::string tag = algo;
    const std::string serial = s.run_dir("serial-" + tag), inproc = s.run_dir("inproc-" + tag),
                      shm = s.run_dir("shm-" + tag);
    const std::vector<std::string> common = {"--layers", "4", "--algorithm", algo};
    auto with = [&](std::vector<std::string> extra) {
      extra.insert(extra.begin(), common.begin(), common.end());
      return extra;
    };
    // --layers given twice: the later flag wins.
    require_ok(s.radmm(teacher_args(serial, with({}))));
    require_ok(s.radmm(teacher_args(inproc, with({"--parallel", "inproc"}))));
    const run_result r = s.radmm(teacher_args(shm, with({"--parallel", "shm"})));
    require_ok(r);
    CHECK(fs::exists(fs::path(serial) / "W_4.npy"));
    check_same_weights(serial, inproc, 4);
    check_same_weights(serial, shm, 4);
    const auto m = metrics_without_seconds(serial);
    CHECK(metrics_without_seconds(inproc) == m);
    CHECK(metrics_without_seconds(shm) == m);
    // The multi-process run left no shared memory and no worker behind.
    CHECK(shm_objects_of(r.pid).empty());
    CHECK(processes_of(r.pid).empty());
  }
  CHECK(s.temporaries().empty());
}

TEST_CASE("cli: --init-from a model directory starts from its weights") {
  scratch s;
  const std::string first = s.run_dir("first"), second = s.run_dir("second"), again = s.run_dir("again");
  require_ok(s.radmm(teacher_args(first)));
  require_ok(s.radmm(teacher_args(second, {"--init-from", first})));
  require_ok(s.radmm(teacher_args(again, {"--init-from", first})));
  // Deterministic, and not the run it started from (it trained further).
  check_same_weights(second, again, 3);
  CHECK(read_text(fs::path(first) / "W_2.npy") != read_text(fs::path(second) / "W_2.npy"));
  // The start point matters: different from a fresh start with the same seed.
  const auto m_first = metrics_without_seconds(first), m_second = metrics_without_seconds(second);
  CHECK(m_first[1] != m_second[1]);
  CHECK(contains(read_text(fs::path(second) / "config.txt"), "init-from = " + first));
}

TEST_CASE("cli: a ';' separated CSV with a quoted header trains, and eval reads it back") {
  scratch s;
  const std::string data = s.input("semi.csv", make_csv(40, ';', true));
  const std::string model = s.run_dir("m");
  require_ok(s.radmm({"train", "--data", data, "--target", "y", "--layers", "2", "--iterations", "3", "--quiet",
                      "--out", model}));
  const std::string mj = read_text(fs::path(model) / "model.json");
  CHECK(contains(mj, "\"a\""));
  CHECK(contains(mj, "\"c\""));
  const run_result ev = s.radmm({"eval", "--model", model, "--data", data});
  require_ok(ev);
  CHECK(contains(ev.out, "rows 40\n"));
  // The target by index works the same as by name.
  const std::string by_index = s.run_dir("idx");
  require_ok(s.radmm({"train", "--data", data, "--target", "3", "--layers", "2", "--iterations", "3", "--quiet",
                      "--out", by_index}));
  check_same_weights(model, by_index, 2);
}

TEST_CASE("cli: --test-fraction 0 trains on every row and reports no test MSE") {
  scratch s;
  const std::string model = s.run_dir("m");
  auto args = teacher_args(model, {"--test-fraction", "0"});
  args.erase(std::find(args.begin(), args.end(), "--quiet"));
  const run_result r = s.radmm(args);
  require_ok(r);
  CHECK(contains(r.err, "48 train / 0 test samples"));
  CHECK_FALSE(contains(r.err, "test MSE"));
  const auto m = metrics_without_seconds(model);
  const auto header = m[0];
  const auto col = static_cast<std::size_t>(std::find(header.begin(), header.end(), "mse_test") - header.begin());
  REQUIRE(col < header.size());
  for (std::size_t row = 1; row < m.size(); ++row) {
    CAPTURE(row);
    CHECK(std::isnan(parse_double(m[row][col])));
  }
  CHECK(contains(read_text(fs::path(model) / "model.json"), "\"mse_test\": null"));
}

// ------------------------------------------------------------- bad input

TEST_CASE("cli bad input: data files name the file, line and column, exit 2 and write nothing") {
  scratch s;
  const std::string out = s.run_dir("out");
  auto train = [&](const std::string& data) {
    return s.radmm({"train", "--data", data, "--iterations", "3", "--quiet", "--out", out});
  };
  struct bad_file {
    const char* what;
    std::string contents;
    std::string where;  // ":LINE:COL: "
    std::string message;
  };
  const std::vector<bad_file> cases = {
      {"empty file", "", ":1:1: ", "file is empty"},
      {"only blank lines", "\n\n", ":1:1: ", "file is empty"},
      {"header only", "a,b,y\n", ":2:1: ", "no data rows after the header (3 columns)"},
      {"ragged row, short", "a,b,y\n1,2,3\n4,5\n", ":3:1: ", "row has 2 columns, expected 3 (separator ',')"},
      {"ragged row, long", "a;b;y\n1;2;3\n4;5;6;7\n", ":3:1: ", "row has 4 columns, expected 3 (separator ';')"},
      {"non-numeric field", "a,b,y\n1,2,3\n4,five,6\n", ":3:3: ", "non-numeric field \"five\" in column 'b'"},
      {"empty field", "a,b,y\n1,,3\n", ":2:3: ", "empty field in column 'b'"},
      {"NaN", "a,b,y\n1,2,3\n4,5,nan\n", ":3:5: ", "value \"nan\" in column 'y' is NaN"},
      {"Inf", "a,b,y\ninf,2,3\n", ":2:1: ", "value \"inf\" in column 'a' is infinite"},
      {"-Inf", "a,b,y\n1,-inf,3\n", ":2:3: ", "value \"-inf\" in column 'b' is infinite"},
      {"overflow to Inf", "a,b,y\n1,2,1e999\n", ":2:5: ", "value \"1e999\" in column 'y' is infinite"},
      {"unterminated quote", "a,b,y\n1,\"2,3\n", ":2:3: ", "unterminated quoted field"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const std::string p = s.input("bad.csv", c.contents);
    check_refused(s, train(p), 2, {p + c.where + c.message});
  }

  {
    INFO("missing file");
    const std::string p = (s.in / "nope.csv").string();
    check_refused(s, train(p), 2, {p + ": cannot open: No such file or directory"});
  }
  {
    INFO("unreadable file");
    const std::string p = s.input("secret.csv", make_csv(10));
    REQUIRE(::chmod(p.c_str(), 0) == 0);
    if (::geteuid() != 0) {
      check_refused(s, train(p), 2, {p + ": cannot open: Permission denied"});
    } else {
      // Root reads a mode-000 file, so run radmm as "nobody" (65534) instead;
      // skip when that user cannot run it (e.g. the build is not world-readable).
      const run_result r = s.radmm({"train", "--data", p, "--iterations", "3", "--quiet", "--out", out},
                                   std::chrono::seconds(120), 65534);
      if (r.code == 126 || r.code == 127 || contains(r.err, "error while loading shared libraries"))
        MESSAGE("skipped: running as root (a mode-000 file is still readable) and cannot run radmm as nobody");
      else
        check_refused(s, r, 2, {p + ": cannot open: Permission denied"});
    }
    ::chmod(p.c_str(), 0600);
  }
  {
    INFO("a directory instead of a file");
    check_refused(s, train(s.in.string()), 2, {s.in.string() + ":"});
  }
}

TEST_CASE("cli bad input: unknown target and too few rows name the file or flag") {
  scratch s;
  const std::string out = s.run_dir("out");
  const std::string data = s.input("d.csv", make_csv(10));
  check_refused(s,
                s.radmm({"train", "--data", data, "--target", "quality", "--iterations", "3", "--quiet", "--out", out}),
                2, {data + ": unknown target 'quality'; available columns: 'a' (0), 'b' (1), 'c' (2), 'y' (3)"});
  check_refused(s, s.radmm({"train", "--data", data, "--target", "7", "--iterations", "3", "--quiet", "--out", out}), 2,
                {data + ": target column index 7 is out of range for 4 columns"});
  const std::string one = s.input("one.csv", make_csv(1));
  check_refused(s, s.radmm({"train", "--data", one, "--iterations", "3", "--quiet", "--out", out}), 2,
                {"--test-fraction 0.2 of 1 row gives 0 test samples; use more rows or --test-fraction 0"});
  const std::string three = s.input("three.csv", make_csv(3));
  check_refused(s,
                s.radmm({"train", "--data", three, "--test-fraction", "0.9", "--iterations", "3", "--quiet", "--out",
                         out}),
                2, {"--test-fraction 0.9 of 3 rows leaves no training samples"});
  const std::string target_only = s.input("t.csv", "y\n1\n2\n3\n");
  check_refused(s, s.radmm({"train", "--data", target_only, "--iterations", "3", "--quiet", "--out", out}), 2,
                {target_only + ": the data has only the target column 'y'"});
}

TEST_CASE("cli bad input: --init-from with a wrong-shape or missing W names the file") {
  scratch s;
  const std::string model = s.run_dir("model");
  require_ok(s.radmm(teacher_args(model)));
  const fs::path init = s.in / "init";
  fs::copy(model, init);
  const auto before = s.run_entries();
  const std::string out = s.run_dir("out");

  // W_2 (8x8) replaced by W_1 (8x4).
  fs::copy_file(init / "W_1.npy", init / "W_2.npy", fs::copy_options::overwrite_existing);
  check_refused(s, s.radmm(teacher_args(out, {"--init-from", init.string()})), 2,
                {(init / "W_2.npy").string() + ": shape 8x4, expected 8x8 for layer 2"}, before);

  // A 3-layer model's files for --layers 4: its output layer W_3 (1x8) is not a
  // hidden block (8x8).
  fs::copy_file(fs::path(model) / "W_2.npy", init / "W_2.npy", fs::copy_options::overwrite_existing);
  check_refused(s, s.radmm(teacher_args(out, {"--init-from", init.string(), "--layers", "4"})), 2,
                {(init / "W_3.npy").string() + ": shape 1x8, expected 8x8 for layer 3"}, before);
  // ... and with a fitting W_3 the missing W_4 is named.
  fs::copy_file(fs::path(model) / "W_2.npy", init / "W_3.npy", fs::copy_options::overwrite_existing);
  check_refused(s, s.radmm(teacher_args(out, {"--init-from", init.string(), "--layers", "4"})), 2,
                {(init / "W_4.npy").string() + ": missing; a 4-layer model needs W_1.npy .. W_4.npy"}, before);
  fs::copy_file(fs::path(model) / "W_3.npy", init / "W_3.npy", fs::copy_options::overwrite_existing);

  fs::remove(init / "W_2.npy");
  check_refused(s, s.radmm(teacher_args(out, {"--init-from", init.string()})), 2,
                {(init / "W_2.npy").string() + ": missing; a 3-layer model needs W_1.npy .. W_3.npy"}, before);

  // Not a .npy file at all.
  write_text(init / "W_2.npy", "not numpy");
  check_refused(s, s.radmm(teacher_args(out, {"--init-from", init.string()})), 2,
                {(init / "W_2.npy").string() + ": not a .npy file"}, before);

  const std::string nodir = (s.in / "nodir").string();
  check_refused(s, s.radmm(teacher_args(out, {"--init-from", nodir})), 2, {nodir + ": not a directory"}, before);
}

TEST_CASE("cli bad input: flags name the flag and the value") {
  scratch s;
  const std::string out = s.run_dir("out");
  struct bad_flags {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<bad_flags> cases = {
      {{"--iteration", "3"}, "radmm: unknown flag --iteration (did you mean --iterations?)"},
      {{"--bta=2"}, "radmm: unknown flag --bta (did you mean --beta?)"},
      {{"--layers", "abc"}, "radmm: --layers: 'abc' is not an integer"},
      {{"--beta", "1e"}, "radmm: --beta: '1e' is not a number"},
      {{"--beta", "nan"}, "radmm: --beta: 'nan' is not a number (NaN is not allowed)"},
      {{"--seed", "-1"}, "radmm: --seed: '-1' is not a non-negative integer"},
      {{"--beta", "0"}, "radmm: --beta must be > 0 (got 0)"},
      {{"--lambda", "-1"}, "radmm: --lambda must be >= 0 (got -1)"},
      {{"--layers", "1"}, "radmm: --layers must be at least 2 (got 1)"},
      {{"--activation", "foo"}, "radmm: --activation: unknown activation 'foo'"},
      // teacher data: 8 features + the bias feature.
      {{"--width", "4"}, "radmm: --width 4 is smaller than the input width 9"},
      {{"--parallel", "mpi"}, "radmm: --parallel: 'mpi' is not a parallel mode"},
      {{"--test-fraction", "1"}, "radmm: --test-fraction must be in [0, 1) (got 1)"},
      {{"--beta"}, "radmm: --beta needs a value"},
      {{"data.csv"}, "radmm: unexpected argument 'data.csv'"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.message);
    std::vector<std::string> args = {"train", "--iterations", "3", "--quiet", "--out", out};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const run_result r = s.radmm(args);
    check_refused(s, r, 2, {c.message});
    CHECK(lines_of(r.err).size() == 1);
  }
  // An unknown command and no command at all print the usage.
  const run_result unknown = s.radmm({"trian"});
  CHECK(unknown.code == 2);
  CHECK(contains(unknown.err, "radmm: unknown command 'trian'"));
  const run_result none = s.radmm({});
  CHECK(none.code == 2);
  CHECK(contains(none.out, "usage:"));
  CHECK(s.run_entries().empty());
}

TEST_CASE("cli bad input: a config file error names FILE:LINE") {
  scratch s;
  const std::string out = s.run_dir("out");
  struct bad_config {
    std::string contents, message;  // message after "FILE:"
  };
  const std::vector<bad_config> cases = {
      {"iterations = 3\nbeta = 1e\n", "2: beta: '1e' is not a number"},
      {"# comment\n\nbta = 2\n", "3: unknown key 'bta' (did you mean 'beta'?)"},
      {"layers 3\n", "1: expected 'key = value', found 'layers 3'"},
      {"out = \"abc\n", "1: unterminated quoted value"},
      {"config = other.txt\n", "1: a config file cannot include another (config = ...)"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.message);
    const std::string p = s.input("cfg.txt", c.contents);
    check_refused(s, s.radmm({"train", "--config", p, "--iterations", "3", "--quiet", "--out", out}), 2,
                  {"radmm: " + p + ":" + c.message});
  }
  // A value that parses but is out of range names the setting (validate runs
  // after the file is merged with the flags).
  const std::string p = s.input("cfg.txt", "layers = 1\n");
  check_refused(s, s.radmm({"train", "--config", p, "--quiet", "--out", out}), 2,
                {"--layers must be at least 2 (got 1)"});
  const std::string missing = (s.in / "missing.txt").string();
  check_refused(s, s.radmm({"train", "--config", missing, "--quiet", "--out", out}), 2,
                {missing + ": cannot open the config file: No such file or directory"});
}

TEST_CASE("cli bad input: an existing non-empty --out is refused without --force and left untouched") {
  scratch s;
  const fs::path out = s.runs / "taken";
  fs::create_directories(out);
  write_text(out / "keep.txt", "precious");
  const run_result r = s.radmm(teacher_args(out.string()));
  check_refused(s, r, 2, {out.string() + ": directory exists and is not empty; pass --force to replace it"},
                {"taken"});
  CHECK(read_text(out / "keep.txt") == "precious");
  std::set<std::string> inside;
  for (const auto& e : fs::directory_iterator(out)) inside.insert(e.path().filename().string());
  CHECK(inside == std::set<std::string>{"keep.txt"});

  // A file where the directory should go is refused too.
  write_text(s.runs / "file", "x");
  check_refused(s, s.radmm(teacher_args((s.runs / "file").string())), 2, {"exists and is not a directory"},
                {"file", "taken"});
  CHECK(read_text(s.runs / "file") == "x");

  // With --force the directory is replaced as a whole.
  require_ok(s.radmm(teacher_args(out.string(), {"--force"})));
  CHECK_FALSE(fs::exists(out / "keep.txt"));
  CHECK(fs::exists(out / "W_3.npy"));
  // An empty existing directory needs no --force.
  fs::create_directories(s.runs / "empty");
  require_ok(s.radmm(teacher_args((s.runs / "empty").string())));
  CHECK(fs::exists(s.runs / "empty" / "model.json"));
  CHECK(s.temporaries().empty());
}

TEST_CASE("cli bad input: eval and predict name the model directory, model.json or data file") {
  scratch s;
  const std::string model = s.run_dir("model");
  require_ok(s.radmm(teacher_args(model)));
  const std::string data = s.input("eval.csv", make_teacher_like_csv(6, true));
  const std::string pred = s.run_dir("pred.csv");
  const auto before = s.run_entries();
  auto eval = [&](const std::string& m, const std::string& d) { return s.radmm({"eval", "--model", m, "--data", d}); };
  auto predict = [&](const std::string& m, const std::string& d) {
    return s.radmm({"predict", "--model", m, "--data", d, "--out", pred});
  };

  const std::string nomodel = s.run_dir("nomodel");
  check_refused(s, eval(nomodel, data), 2, {nomodel + ": not a model directory (it does not exist)"}, before);
  check_refused(s, predict(nomodel, data), 2, {nomodel + ": not a model directory (it does not exist)"}, before);

  // Wrong number of columns (names that do not match, so read by position).
  const std::string two = s.input("two.csv", "p,q\n1,2\n3,4\n");
  const std::string shape_msg =
      two + ": has 2 columns; the model needs 3 features (optionally followed by 1 target column(s))";
  check_refused(s, eval(model, two), 2, {shape_msg}, before);
  check_refused(s, predict(model, two), 2, {shape_msg}, before);
  // eval needs the target column; predict does not.
  const std::string no_target = s.input("x.csv", make_teacher_like_csv(4, false));
  check_refused(s, eval(model, no_target), 2, {no_target + ": has no target column 'y' to evaluate against"},
                before);
  // A bad data file names its line and column here as in train.
  const std::string ragged = s.input("ragged.csv", "x1,x2,x3,y\n1,2,3,4\n1,2\n");
  check_refused(s, eval(model, ragged), 2, {ragged + ":3:1: row has 2 columns, expected 4"}, before);
  const std::string missing = (s.in / "missing.csv").string();
  check_refused(s, predict(model, missing), 2, {missing + ": cannot open: No such file or directory"}, before);

  // An output file that cannot be written is refused like any other bad path.
  const std::string nodir_pred = (s.runs / "nodir" / "p.csv").string();
  check_refused(s, s.radmm({"predict", "--model", model, "--data", data, "--out", nodir_pred}), 2,
                {nodir_pred + ": "}, before);

  // Flags.
  check_refused(s, s.radmm({"eval", "--model", model}), 2, {"radmm eval: --data FILE is required"}, before);
  check_refused(s, s.radmm({"eval", "--modle", model, "--data", data}), 2, {"radmm: eval: unknown flag --modle", "expected --model"},
                before);
  check_refused(s, s.radmm({"predict", "--model", model, "--data", data}), 2,
                {"radmm predict: --out FILE is required"}, before);
  check_refused(s, s.radmm({"eval", "--model", model, "--data", data, "--out", pred}), 2,
                {"radmm: eval: unknown flag --out"}, before);

  // A corrupted model.json names the file, line and column.
  const fs::path mj = fs::path(model) / "model.json";
  const std::string good = read_text(mj);
  write_text(mj, "{\n  \"format\": \"radmm-model\",\n  \"version\": 1,,\n}");
  check_refused(s, eval(model, data), 2, {mj.string() + ":3:16: expected a string key, found ','"}, before);
  check_refused(s, predict(model, data), 2, {mj.string() + ":3:16: "}, before);
  write_text(mj, good.substr(0, good.size() / 2));
  check_refused(s, eval(model, data), 2, {mj.string() + ":"}, before);
  write_text(mj, good);
  // A missing weight file.
  fs::rename(fs::path(model) / "W_2.npy", s.in / "W_2.npy");
  check_refused(s, eval(model, data), 2, {(fs::path(model) / "W_2.npy").string() + ": missing"}, before);
  fs::rename(s.in / "W_2.npy", fs::path(model) / "W_2.npy");
  // Restored: it works again.
  require_ok(eval(model, data));
}

TEST_CASE("cli warning: --beta 0.5 with two-splitting warns about Assumption 1 and still trains") {
  scratch s;
  const std::string out = s.run_dir("out");
  const run_result r = s.radmm(teacher_args(out, {"--beta", "0.5", "--algorithm", "2s"}));
  require_ok(r);
  CHECK(contains(r.err, "radmm: warning: --beta 0.5 <= 1: outside Assumption 1"));
  CHECK(fs::exists(fs::path(out) / "W_3.npy"));
  // beta > 1 gives no warning.
  const run_result ok = s.radmm(teacher_args(s.run_dir("ok"), {"--beta", "1.5", "--algorithm", "2s"}));
  require_ok(ok);
  CHECK_FALSE(contains(ok.err, "warning"));
}
