// `radmm train` flags and config files: parsing, exact round trips through
// config.txt, and that every user error names the flag or file:line at fault.
#include "coordinator/config.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using radmm::coordinator::config_error;
using radmm::coordinator::parse_train_args;
using radmm::coordinator::run_config;

namespace {

// Field-by-field equality: run_config has no operator== of its own.
void check_same(const run_config& a, const run_config& b) {
  CHECK(a.data == b.data);
  CHECK(a.target == b.target);
  CHECK(a.dataset == b.dataset);
  CHECK(a.samples == b.samples);
  CHECK(a.features == b.features);
  CHECK(a.test_fraction == b.test_fraction);
  CHECK(a.normalize == b.normalize);
  CHECK(a.bias == b.bias);
  CHECK(a.layers == b.layers);
  CHECK(a.width == b.width);
  CHECK(a.activation == b.activation);
  CHECK(a.seed == b.seed);
  CHECK(a.init == b.init);
  CHECK(a.init_from == b.init_from);
  CHECK(a.algorithm == b.algorithm);
  CHECK(a.variant == b.variant);
  CHECK(a.preset == b.preset);
  CHECK(a.iterations == b.iterations);
  CHECK(a.batch_size == b.batch_size);
  CHECK(a.updates_per_batch == b.updates_per_batch);
  CHECK(a.beta == b.beta);
  CHECK(a.mu == b.mu);
  CHECK(a.lambda == b.lambda);
  CHECK(a.tau == b.tau);
  CHECK(a.nu == b.nu);
  CHECK(a.ef_tau == b.ef_tau);
  CHECK(a.ef_nu == b.ef_nu);
  CHECK(a.kappa == b.kappa);
  CHECK(a.inner_tol == b.inner_tol);
  CHECK(a.inner_max_iter == b.inner_max_iter);
  CHECK(a.threads == b.threads);
  CHECK(a.parallel == b.parallel);
  CHECK(a.sync_every == b.sync_every);
  CHECK(a.metrics_every == b.metrics_every);
  CHECK(a.out == b.out);
  CHECK(a.quiet == b.quiet);
  CHECK(a.force == b.force);
  CHECK(a.trace == b.trace);
  CHECK(a.trace_payloads == b.trace_payloads);
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("radmm-config-test-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& contents) const {
    const fs::path p = path / name;
    std::ofstream(p) << contents;
    return p.string();
  }
};

run_config reread(const run_config& c) {
  temp_dir d;
  return parse_train_args({"--config", d.file("config.txt", radmm::coordinator::to_config_text(c))});
}

std::string args_error(const std::vector<std::string>& args) {
  try {
    const run_config c = parse_train_args(args);
    radmm::coordinator::validate(c);
  } catch (const config_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("flags accept both --name value and --name=value, switches take no value") {
  const run_config c =
      parse_train_args({"--layers", "5", "--beta=2.5", "--quiet", "--bias", "off", "--test_fraction", "0.25",
                        "--parallel=shm", "--force", "--seed", "18446744073709551615"});
  CHECK(c.layers == 5);
  REQUIRE(c.beta.has_value());
  CHECK(*c.beta == 2.5);
  CHECK(c.quiet);
  CHECK(c.force);
  CHECK_FALSE(c.bias);
  CHECK(c.test_fraction == 0.25);
  CHECK(c.parallel == radmm::coordinator::parallel_mode::shm);
  CHECK(c.seed == 18446744073709551615ull);
  CHECK_FALSE(c.trace_payloads);
  CHECK_FALSE(c.mu.has_value());
  CHECK(parse_train_args({"--quiet=off"}).quiet == false);
}

TEST_CASE("the default config validates and round trips through config text") {
  const run_config c;
  radmm::coordinator::validate(c);
  check_same(reread(c), c);
}

TEST_CASE("a config with every hyper-parameter set round trips exactly") {
  run_config c;
  c.data = "/data/wine quality#2.csv";
  c.target = "quality";
  c.test_fraction = 0.1;
  c.bias = false;
  c.layers = 7;
  c.width = 32;
  c.activation = "tanh";
  c.seed = 1234567890123ull;
  c.init = "kaiming";
  c.init_from = " dir with spaces ";
  c.algorithm = "3s";
  c.variant = "proximal";
  c.preset = "paper";
  c.iterations = 500;
  c.batch_size = 64;
  c.updates_per_batch = 3;
  c.beta = 1.0 / 3.0;
  c.mu = 1e-300;
  c.lambda = 0.0;
  c.tau = 0.1 + 0.2;  // not exactly 0.3: needs all 17 digits
  c.nu = 5e-7;
  c.ef_tau = 1.0000000000000002;
  c.ef_nu = 1.05;
  c.kappa = std::numeric_limits<double>::infinity();
  c.inner_tol = 1e-12;
  c.inner_max_iter = 50;
  c.threads = 4;
  c.parallel = radmm::coordinator::parallel_mode::tcp;
  c.sync_every = 3;
  c.metrics_every = 5;
  c.out = "out\"quoted\"";
  c.quiet = true;
  c.force = true;
  c.trace = "t.trace";
  c.trace_payloads = true;
  radmm::coordinator::validate(c);
  check_same(reread(c), c);
}

TEST_CASE("config text names every key exactly once") {
  std::istringstream in(radmm::coordinator::to_config_text(run_config{}));
  std::set<std::string> keys;
  std::string line;
  int settings = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0 && line.find(" = (preset)") != std::string::npos) line = line.substr(2);
    else if (line.empty() || line[0] == '#') continue;
    const std::string key = line.substr(0, line.find(" ="));
    CHECK_MESSAGE(keys.insert(key).second, "duplicate key " << key);
    ++settings;
  }
  CHECK(settings >= 39);
}

TEST_CASE("unset hyper-parameters are written commented out and stay unset") {
  run_config c;
  c.mu = 2.0;
  const std::string text = radmm::coordinator::to_config_text(c);
  CHECK(text.find("# beta = (preset)\n") != std::string::npos);
  CHECK(text.find("\nmu = 2\n") != std::string::npos);
  CHECK(text.find("\ntest-fraction = 0.2\n") != std::string::npos);
  const run_config back = reread(c);
  CHECK_FALSE(back.beta.has_value());
  CHECK(back.mu == 2.0);
}

TEST_CASE("command-line flags override the config file, and 'preset' unsets a value") {
  temp_dir d;
  const std::string p =
      d.file("c.txt", "# comment\nlayers = 4\nbeta = 3   # trailing comment\n\nactivation=sigmoid\n");
  const run_config c = parse_train_args({"--layers", "6", "--config", p, "--beta", "preset"});
  CHECK(c.layers == 6);
  CHECK(c.activation == "sigmoid");
  CHECK_FALSE(c.beta.has_value());
}

TEST_CASE("an unknown flag suggests the closest known one") {
  CHECK(args_error({"--bta", "1"}) == "unknown flag --bta (did you mean --beta?)");
  CHECK(args_error({"--iteration", "3"}) == "unknown flag --iteration (did you mean --iterations?)");
  CHECK(args_error({"--test-fractoin=0.1"}) ==
        "unknown flag --test-fractoin (did you mean --test-fraction?)");
}

TEST_CASE("bad numbers name the flag and the value") {
  CHECK(args_error({"--layers", "abc"}) == "--layers: 'abc' is not an integer");
  CHECK(args_error({"--beta", "1e"}) == "--beta: '1e' is not a number");
  CHECK(args_error({"--beta", "nan"}) == "--beta: 'nan' is not a number (NaN is not allowed)");
  CHECK(args_error({"--mu", "inf"}) == "--mu: 'inf' is not a finite number");
  CHECK(args_error({"--layers", "99999999999"}) ==
        "--layers: 99999999999 is out of range (-2147483648 .. 2147483647)");
  CHECK(args_error({"--seed", "-1"}) == "--seed: '-1' is not a non-negative integer");
  CHECK(args_error({"--bias", "maybe"}) == "--bias: 'maybe' is not a boolean (on/off, true/false)");
  CHECK(args_error({"--parallel", "mpi"}) ==
        "--parallel: 'mpi' is not a parallel mode (none, inproc, shm or tcp)");
  CHECK(args_error({"--beta"}) == "--beta needs a value");
  CHECK(args_error({"--out", "--force"}) == "--out needs a value");
  CHECK(args_error({"train.csv"}) ==
        "unexpected argument 'train.csv' (flags look like --name value; see radmm train --help)");
}

TEST_CASE("config file errors name the file and line") {
  temp_dir d;
  const std::string p1 = d.file("a.txt", "layers = 3\nbeta = 1e\n");
  CHECK(args_error({"--config", p1}) == p1 + ":2: beta: '1e' is not a number");
  const std::string p2 = d.file("b.txt", "\n# x\nbta = 2\n");
  CHECK(args_error({"--config", p2}) == p2 + ":3: unknown key 'bta' (did you mean 'beta'?)");
  const std::string p3 = d.file("c.txt", "layers 3\n");
  CHECK(args_error({"--config", p3}) == p3 + ":1: expected 'key = value', found 'layers 3'");
  const std::string p4 = d.file("d.txt", "out = \"abc\n");
  CHECK(args_error({"--config", p4}) == p4 + ":1: unterminated quoted value");
  CHECK(args_error({"--config", (d.path / "missing.txt").string()}) ==
        (d.path / "missing.txt").string() + ": cannot open the config file: No such file or directory");
}

TEST_CASE("validate names the flag of every out-of-range setting") {
  CHECK(args_error({"--layers", "1"}) == "--layers must be at least 2 (got 1)");
  CHECK(args_error({"--beta", "0"}) == "--beta must be > 0 (got 0)");
  CHECK(args_error({"--mu", "-1"}) == "--mu must be > 0 (got -1)");
  CHECK(args_error({"--lambda", "-0.5"}) == "--lambda must be >= 0 (got -0.5)");
  CHECK(args_error({"--tau", "0"}) == "--tau must be > 0 (got 0)");
  CHECK(args_error({"--nu", "0"}) == "--nu must be > 0 (got 0)");
  CHECK(args_error({"--ef-tau", "0.9"}) == "--ef-tau must be >= 1 (step-sizes only grow) (got 0.9)");
  CHECK(args_error({"--ef-nu", "0.5"}) == "--ef-nu must be >= 1 (step-sizes only grow) (got 0.5)");
  CHECK(args_error({"--iterations", "0"}) == "--iterations must be at least 1 (got 0)");
  CHECK(args_error({"--samples", "1"}) == "--samples must be at least 2 (got 1)");
  CHECK(args_error({"--features", "0"}) == "--features must be at least 1 (got 0)");
  CHECK(args_error({"--test-fraction", "1"}) == "--test-fraction must be in [0, 1) (got 1)");
  CHECK(args_error({"--batch-size", "-1"}) == "--batch-size must be at least 0 (0: full batch) (got -1)");
  CHECK(args_error({"--updates-per-batch", "0"}) == "--updates-per-batch must be at least 1 (got 0)");
  CHECK(args_error({"--threads", "0"}) == "--threads must be at least 1 (got 0)");
  CHECK(args_error({"--width", "-3"}) == "--width must be at least 0 (0: max(input width, 32)) (got -3)");
  CHECK(args_error({"--sync-every", "0"}) == "--sync-every must be at least 1 (got 0)");
  CHECK(args_error({"--metrics-every", "0"}) == "--metrics-every must be at least 1 (got 0)");
  CHECK(args_error({"--init", "xavier"}) == "--init must be residual or kaiming (got 'xavier')");
  CHECK(args_error({"--normalize", "zscore"}) == "--normalize must be minmax or none (got 'zscore')");
  CHECK(args_error({"--activation", "gelu"}).rfind("--activation: unknown activation 'gelu'", 0) == 0);
  CHECK(args_error({"--algorithm", "4s"}).rfind("--algorithm: ", 0) == 0);
  CHECK(args_error({"--algorithm", "4s"}).find("4s") != std::string::npos);
  CHECK(args_error({"--variant", "exact"}).rfind("--variant: ", 0) == 0);
  CHECK(args_error({"--preset", "fast"}).rfind("--preset: unknown preset 'fast'", 0) == 0);
  CHECK(args_error({"--dataset", "spiral"}) ==
        "--dataset: unknown built-in dataset 'spiral' (available: oscillating, teacher); or give a CSV file "
        "with --data");
  CHECK(args_error({"--data", "x.csv", "--dataset", "spiral"}) == "(no error)");
}

TEST_CASE("train usage lists every flag with its default") {
  const std::string u = radmm::coordinator::train_usage();
  for (const char* flag : {"--config",
                           "--data",
                           "--target",
                           "--dataset",
                           "--samples",
                           "--features",
                           "--test-fraction",
                           "--normalize",
                           "--bias",
                           "--layers",
                           "--width",
                           "--activation",
                           "--seed",
                           "--init-from",
                           "--algorithm",
                           "--variant",
                           "--preset",
                           "--iterations",
                           "--batch-size",
                           "--updates-per-batch",
                           "--beta",
                           "--mu",
                           "--lambda",
                           "--tau",
                           "--nu",
                           "--ef-tau",
                           "--ef-nu",
                           "--kappa",
                           "--inner-tol",
                           "--inner-max-iter",
                           "--threads",
                           "--parallel",
                           "--sync-every",
                           "--metrics-every",
                           "--out",
                           "--quiet",
                           "--force",
                           "--trace",
                           "--trace-payloads"})
    CHECK_MESSAGE(u.find(std::string("  ") + flag + " ") != std::string::npos, flag);
  CHECK(u.find("--layers N") != std::string::npos);
  CHECK(u.find("--data FILE") != std::string::npos);
  CHECK(u.find("[default: 3]") != std::string::npos);
  CHECK(u.find("[default: preset]") != std::string::npos);
  CHECK(radmm::coordinator::wants_help({"--layers", "3", "-h"}));
  CHECK_FALSE(radmm::coordinator::wants_help({"--layers", "3"}));
}

TEST_CASE("parallel modes parse and print by name") {
  using radmm::coordinator::parallel_mode;
  CHECK(radmm::coordinator::parse_parallel("off") == parallel_mode::none);
  for (auto m : {parallel_mode::none, parallel_mode::inproc, parallel_mode::shm, parallel_mode::tcp})
    CHECK(radmm::coordinator::parse_parallel(radmm::coordinator::to_string(m)) == m);
  CHECK_THROWS_WITH_AS(radmm::coordinator::parse_parallel("mpi"),
                       "unknown --parallel 'mpi' (expected none, inproc, shm or tcp)", config_error);
}
