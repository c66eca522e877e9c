// End-to-end check of the serial updates against the float64 reference runs in
// ../shared/reference (Algorithms 1 and 2, proximal linearized, computed by an
// independent implementation). Tolerance: 1e-9 relative on the final weights
// and on every metric of every iteration.
#include "core/npy.hpp"
#include "core/rng.hpp"
#include "core/serial.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace radmm::core;

namespace {

// hp.json is a flat object of numbers and strings; this reads exactly that.
std::map<std::string, std::string> read_flat_json(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while ((pos = s.find('"', pos)) != std::string::npos) {
    const std::size_t end = s.find('"', pos + 1);
    const std::string key = s.substr(pos + 1, end - pos - 1);
    std::size_t colon = s.find(':', end);
    std::size_t vstart = s.find_first_not_of(" \t\n", colon + 1);
    std::size_t vend;
    std::string value;
    if (s[vstart] == '"') {
      vend = s.find('"', vstart + 1);
      value = s.substr(vstart + 1, vend - vstart - 1);
      ++vend;
    } else {
      vend = s.find_first_of(",}\n", vstart);
      value = s.substr(vstart, vend - vstart);
    }
    out[key] = value;
    pos = vend;
  }
  return out;
}

std::vector<std::map<std::string, double>> read_metrics(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  std::vector<std::string> names;
  std::stringstream hs(line);
  for (std::string f; std::getline(hs, f, ',');) names.push_back(f);
  std::vector<std::map<std::string, double>> rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream ls(line);
    std::map<std::string, double> row;
    std::size_t c = 0;
    for (std::string f; std::getline(ls, f, ','); ++c) row[names.at(c)] = std::strtod(f.c_str(), nullptr);
    rows.push_back(row);
  }
  return rows;
}

double rel_diff(double a, double b) { return std::abs(a - b) / std::max(1.0, std::abs(b)); }

void check_case(const std::string& name) {
  const fs::path dir = fs::path(RADMM_SHARED_DIR) / "reference" / name;
  if (!fs::exists(dir)) {
    MESSAGE("skipped: " << dir << " is absent");
    return;
  }
  auto hp_json = read_flat_json(dir / "hp.json");
  const int N = std::stoi(hp_json.at("N"));
  const int K = std::stoi(hp_json.at("K"));
  const mat X = read_npy((dir / "X.npy").string());
  const mat Y = read_npy((dir / "Y.npy").string());
  weight_set W0(N + 1), W_final(N + 1);
  for (int i = 1; i <= N; ++i) {
    W0[i] = read_npy((dir / "W0" / ("W" + std::to_string(i) + ".npy")).string());
    W_final[i] = read_npy((dir / "W_final" / ("W" + std::to_string(i) + ".npy")).string());
  }
  architecture arch;
  arch.layers = N;
  arch.input_dim = static_cast<int>(X.rows());
  arch.width = static_cast<int>(W0[1].rows());
  arch.output_dim = static_cast<int>(Y.rows());
  arch.act = parse_activation(hp_json.at("act"));
  hyper_params hp;
  hp.algo = parse_algorithm(hp_json.at("algo"));
  hp.beta = std::stod(hp_json.at("beta"));
  hp.mu = std::stod(hp_json.at("mu"));
  hp.lambda = std::stod(hp_json.at("lam"));
  hp.tau = std::stod(hp_json.at("tau"));
  hp.ef_tau = std::stod(hp_json.at("EF_tau"));
  if (hp_json.count("iota")) {
    hp.nu = std::stod(hp_json.at("iota"));
    hp.ef_nu = std::stod(hp_json.at("EF_iota"));
  }
  const auto ref = read_metrics(dir / "metrics.csv");
  REQUIRE(static_cast<int>(ref.size()) == K + 1);

  serial_engine engine(arch, hp, W0);
  engine.set_batch(X, Y);
  auto check_row = [&](int k, std::vector<layer_terms> terms) {
    add_forward_terms(arch, engine.weights(), X, Y, false, terms);
    const iteration_metrics m =
        assemble_metrics(terms, hp.algo, hp.lambda, hp.mu, hp.beta, X.cols(), 0);
    const auto& r = ref[static_cast<std::size_t>(k)];
    INFO(name << " iteration " << k);
    CHECK(rel_diff(m.J, r.at("J")) < 1e-9);
    CHECK(rel_diff(m.J_admm, r.at("J_admm")) < 1e-9);
    CHECK(rel_diff(m.L, r.at("L")) < 1e-9);
    CHECK(rel_diff(m.res_N, r.at("res_N")) < 1e-9);
    CHECK(rel_diff(m.res_pen, r.at("res_pen")) < 1e-9);
    CHECK(rel_diff(m.mse_train, r.at("mse_train")) < 1e-9);
    if (hp.algo == algorithm::three_split) CHECK(rel_diff(m.res_U, r.at("res_U")) < 1e-9);
  };
  check_row(0, admm_terms(arch, hp.algo, engine.state()));
  for (int k = 1; k <= K; ++k) {
    const double tau_in_force = engine.state().tau[1];
    CHECK(rel_diff(tau_in_force, ref[static_cast<std::size_t>(k)].at("tau1")) < 1e-12);
    std::vector<layer_terms> terms;
    engine.iterate(&terms);
    check_row(k, terms);
  }
  for (int i = 1; i <= N; ++i) {
    const double err = (engine.weights()[i] - W_final[i]).norm() / W_final[i].norm();
    INFO(name << " W_" << i << " relative error " << err);
    CHECK(err < 1e-9);
  }
}

}  // namespace

TEST_CASE("two-splitting relu N=3 reproduces the float64 reference run") { check_case("2s_relu_N3"); }
TEST_CASE("two-splitting tanh N=5 reproduces the float64 reference run") { check_case("2s_tanh_N5"); }
TEST_CASE("three-splitting sigmoid N=5 reproduces the float64 reference run") { check_case("3s_sigmoid_N5"); }

TEST_CASE("metrics computed on the fly equal those recomputed from the state") {
  const fs::path dir = fs::path(RADMM_SHARED_DIR) / "reference";
  architecture arch{4, 3, 5, 2, activation::tanh};
  for (algorithm algo : {algorithm::two_split, algorithm::three_split}) {
    hyper_params hp;
    hp.algo = algo;
    hp.beta = 3;
    hp.mu = 0.5;
    hp.lambda = 0.01;
    hp.tau = 2;
    hp.nu = 2;
    rng gen(7);
    mat X(3, 9), Y(2, 9);
    for (Eigen::Index k = 0; k < X.size(); ++k) X.data()[k] = gen.normal();
    for (Eigen::Index k = 0; k < Y.size(); ++k) Y.data()[k] = gen.normal();
    serial_engine engine(arch, hp, kaiming_normal(arch, 3));
    engine.set_batch(X, Y);
    for (int k = 0; k < 3; ++k) {
      std::vector<layer_terms> on_the_fly;
      engine.iterate(&on_the_fly);
      const auto recomputed = admm_terms(arch, algo, engine.state());
      for (int i = 1; i <= arch.layers; ++i) {
        CHECK(on_the_fly[i].weight_sq == doctest::Approx(recomputed[i].weight_sq).epsilon(1e-12));
        CHECK(on_the_fly[i].penalty_sq == doctest::Approx(recomputed[i].penalty_sq).epsilon(1e-10));
        CHECK(on_the_fly[i].coupling_sq == doctest::Approx(recomputed[i].coupling_sq).epsilon(1e-10));
        CHECK(on_the_fly[i].dual_inner == doctest::Approx(recomputed[i].dual_inner).epsilon(1e-10));
        CHECK(on_the_fly[i].fit_sq == doctest::Approx(recomputed[i].fit_sq).epsilon(1e-12));
      }
    }
  }
}
