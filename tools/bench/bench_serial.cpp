// radmm-bench-serial: issue 2's benchmark. For each configuration, the time of
// one serial RADMM iteration (core::serial_engine::iterate, metrics off), its
// analytic floating-point operation count, the achieved GFLOP/s, and next to
// it a plain matrix product's GFLOP/s (d x d times d x n, core::mul, the
// iteration's dominant shape) measured in the same run with the same thread
// count. Target (issue 2): at d = n = 1024 the iteration reaches 80% of the
// product's rate. Numbers, not a test; see docs/benchmarks.md.
#include "bench_common.hpp"

#include "core/serial.hpp"
#include "core/updates.hpp"

#include <Eigen/Core>

#include <iostream>

namespace radmm::bench {
namespace {

const char* usage_text =
    "usage: radmm-bench-serial [flags]\n"
    "  --layers N            layers (default 5)\n"
    "  --shapes DxN,...      width x samples (default 1024x1024,3000x10; --quick 512x512,1500x10)\n"
    "  --algorithms LIST     2s,3s (default both)\n"
    "  --activations LIST    relu,sigmoid,... (default relu)\n"
    "  --variant V           linearized | proximal (proximal: time only, no FLOP count)\n"
    "  --threads LIST        Eigen threads, e.g. 1,2 (default: all cores)\n"
    "  --reps R              timed iterations per configuration, median reported (default 5)\n"
    "  --gemm-reps R         timed square reference products (default 5)\n"
    "  --breakdown           also time every block update of one sweep separately\n"
    "  --quick               smaller shapes and fewer repetitions\n"
    "  --markdown            print tables as Markdown\n"
    "  --seed S              data and weights (default 1)\n";

// Seconds of one plain product A B through core::mul, as the updates call it;
// repeated until at least `min_s` has passed so small shapes are not all clock.
struct product_timer {
  core::mat A, B, C;
  product_timer(long m, long k, long n) : A(core::mat::Random(m, k)), B(core::mat::Random(k, n)) {
    C = core::mul(A, B);  // warm-up: pages, the OpenMP team
  }
  double flop() const { return 2.0 * static_cast<double>(A.rows() * A.cols() * B.cols()); }
  double seconds(double min_s = 0.02) {
    long calls = 0;
    const auto t0 = clock_type::now();
    double s = 0;
    do {
      C = core::mul(A, B);
      ++calls;
      s = seconds_since(t0);
    } while (s < min_s);
    return s / static_cast<double>(calls);
  }
};

struct breakdown_entry {
  double seconds = 0;
  double flop = 0;  // NaN where not counted
  long calls = 0;
};

// One proximal-linearized sweep of core::serial_engine (core/serial.cpp,
// iterate_2s / iterate_3s), replayed update by update on the engine's own
// state, with a clock around each call: where the iteration's time goes.
std::map<std::string, breakdown_entry> timed_sweep(core::serial_engine& engine) {
  using namespace core;
  std::map<std::string, breakdown_entry> out;
  const architecture& arch = engine.arch();
  const hyper_params& hp = engine.hyper();
  admm_state& s = engine.mutable_state();
  const int N = arch.layers;
  const activation act = arch.act;
  const double mu = hp.mu, beta = hp.beta, lambda = hp.lambda;
  const double n = static_cast<double>(s.V[0].cols()), d = arch.width, q = arch.output_dim;
  auto timed = [&](const std::string& label, double flop, auto&& fn) {
    const auto t0 = clock_type::now();
    fn();
    breakdown_entry& e = out[label];
    e.seconds += seconds_since(t0);
    e.flop += flop;
    ++e.calls;
  };
  auto& W = s.W;
  auto& V = s.V;
  auto& pre = s.pre;
  const double nan = std::nan("");
  if (hp.algo == algorithm::two_split) {
    mat& L = s.Lambda[static_cast<std::size_t>(N)];
    timed("W_N ridge (8)", ridge_flops(q, d, n).total(), [&] { W[N] = update_W_ridge(V[N], L, V[N - 1], beta, lambda); });
    for (int i = N - 1; i >= 1; --i)
      timed("W_i linearized (10)", product(d, n, static_cast<double>(arch.cols_of(i))).total(),
            [&] { W[i] = update_W_hidden_linearized(act, W[i], V[i - 1], V[i], pre[i], mu, lambda, s.tau[i]); });
    for (int i = 1; i < N; ++i) {
      timed("W_i V_{i-1}", product(d, static_cast<double>(arch.cols_of(i)), n).total(), [&] { pre[i] = mul(W[i], V[i - 1]); });
      mat A;
      timed("A_i = h + sigma (elementwise)", nan, [&] { A = block_target(act, V[i - 1], pre[i]); });
      if (i < N - 1)
        timed("V_i linearized (12)", 2 * product(d, d, n).total(),
              [&] { V[i] = update_V_hidden_linearized(act, V[i], A, W[i + 1], V[i + 1], mu, s.nu[i]); });
      else
        timed("V_{N-1} (13)", product(d, q, n).total() + gram_shift_flops(q, d, n).total(),
              [&] { V[i] = update_V_penultimate(A, W[N], V[N], L, mu, beta); });
    }
    mat WV;
    timed("W_N V_{N-1}", product(q, d, n).total(), [&] { WV = mul(W[N], V[N - 1]); });
    timed("V_N, Lambda (14), (15)", nan, [&] {
      V[N] = update_V_last(s.Y, WV, L, beta);
      update_dual(L, WV, V[N], beta);
    });
  } else {
    auto& U = s.U;
    auto& L = s.Lambda;
    timed("W_N ridge (18)", ridge_flops(q, d, n).total(), [&] { W[N] = update_W_ridge(V[N], L[N], V[N - 1], beta, lambda); });
    for (int i = N - 1; i >= 1; --i)
      timed("W_i ridge (19)", ridge_flops(d, static_cast<double>(arch.cols_of(i)), n).total(),
            [&] { W[i] = update_W_ridge(U[i], L[i], V[i - 1], beta, lambda); });
    for (int i = 1; i < N; ++i) {
      timed("W_i V_{i-1}", product(d, static_cast<double>(arch.cols_of(i)), n).total(), [&] { pre[i] = mul(W[i], V[i - 1]); });
      timed("U_i linearized (21)", nan,
            [&] { U[i] = update_U_linearized(act, U[i], V[i - 1], V[i], pre[i], L[i], mu, beta, s.tau[i]); });
      if (i < N - 1) {
        timed("V_i (22)", product(d, d, n).total() + gram_shift_flops(d, d, n).total(), [&] {
          V[i] = update_V_hidden_3s(act, V[i - 1], U[i], V[i + 1], U[i + 1], W[i + 1], L[i + 1], mu, beta);
        });
      } else {
        timed("V_{N-1} (23)", product(d, q, n).total() + gram_shift_flops(q, d, n).total(), [&] {
          const mat A = block_target_3s(act, V[i - 1], U[i]);
          V[i] = update_V_penultimate(A, W[N], V[N], L[N], mu, beta);
        });
      }
    }
    mat WV;
    timed("W_N V_{N-1}", product(q, d, n).total(), [&] { WV = mul(W[N], V[N - 1]); });
    timed("V_N, duals (24)-(26)", nan, [&] {
      V[N] = update_V_last(s.Y, WV, L[N], beta);
      for (int i = 1; i < N; ++i) update_dual(L[i], pre[i], U[i], beta);
      update_dual(L[N], WV, V[N], beta);
    });
  }
  return out;
}

int run(int argc, char** argv) {
  flags f(argc, argv, {"quick", "breakdown", "markdown", "help"});
  if (f.on("help")) {
    std::cout << usage_text;
    return 0;
  }
  const bool quick = f.on("quick");
  const int layers = static_cast<int>(f.integer("layers", 5));
  std::vector<shape> shapes;
  for (const std::string& s : f.list("shapes", quick ? "512x512,1500x10" : "1024x1024,3000x10")) shapes.push_back(parse_shape(s));
  const std::vector<std::string> algos = f.list("algorithms", "2s,3s");
  const std::vector<std::string> acts = f.list("activations", "relu");
  const core::variant var = core::parse_variant(f.str("variant", "linearized"));
  const std::vector<long> threads = f.integers("threads", std::to_string(hardware_threads()));
  const int reps = static_cast<int>(f.integer("reps", quick ? 3 : 5));
  const int gemm_reps = static_cast<int>(f.integer("gemm-reps", quick ? 3 : 5));
  const bool breakdown = f.on("breakdown");
  const bool markdown = f.on("markdown");
  const auto seed = static_cast<std::uint64_t>(f.integer("seed", 1));
  f.check_all_used();
  if (layers < 2 || reps < 1 || gemm_reps < 1) throw usage_error("--layers >= 2, --reps >= 1, --gemm-reps >= 1");

  std::cout << "radmm-bench-serial  " << today() << "  cores: " << hardware_threads() << "  N = " << layers
            << ", q = 1, variant " << core::to_string(var) << ", median of " << reps << " iterations after one warm-up"
#ifdef EIGEN_VECTORIZE_AVX
            << "  (Eigen: AVX)"
#else
            << "  (Eigen: SSE2, build without RADMM_NATIVE)"
#endif
            << "\n\n";
  table t({"d", "n", "act", "algo", "thr", "s/iter", "min", "GFLOP/iter", "GFLOP/s", "GEMM dxd.dxn GFLOP/s",
           "iter/GEMM", "GEMM kxk.kxk GFLOP/s", "iter/square"});
  std::vector<std::pair<std::string, std::map<std::string, breakdown_entry>>> breakdowns;
  for (const long thr : threads) {
    if (thr < 1) throw usage_error("--threads must be >= 1");
    Eigen::setNbThreads(static_cast<int>(thr));
    for (const shape& sh : shapes) {
      // The reference products, measured in this run with this thread count:
      // the dominant shape d x d times d x n (timed next to every iteration),
      // and a square one (k = min(d, 1024)), the compute-bound rate that the
      // d x d factorisations of 3s reach when n << d.
      product_timer ref(sh.d, sh.d, sh.n);
      const long k = std::min(sh.d, 1024L);
      product_timer square(k, k, k);
      std::vector<double> sq_rates;
      for (int r = 0; r < gemm_reps; ++r) sq_rates.push_back(square.flop() / square.seconds() * 1e-9);
      const double g_sq = median(sq_rates);
      for (const std::string& act_name : acts) {
        for (const std::string& algo_name : algos) {
          const core::algorithm algo = core::parse_algorithm(algo_name);
          const synthetic p = make_problem(layers, sh.d, sh.n, core::parse_activation(act_name), algo, var, seed);
          core::serial_engine engine(p.arch, p.hp, p.W0);
          engine.set_batch(p.X, p.Y);
          engine.iterate();  // warm-up: first-touch allocations, OpenMP team
          const double fl =
              var == core::variant::linearized ? iteration_flops(p.arch, algo, sh.n).total().total() : std::nan("");
          // Interleaved: a reference product, then an iteration; the ratio of
          // each pair cancels slow drifts in what else the machine is running.
          std::vector<double> times, ref_rates, ratios;
          for (int r = 0; r < reps; ++r) {
            const double tg = ref.seconds();
            const auto t0 = clock_type::now();
            engine.iterate();  // no terms: metrics off
            const double ti = seconds_since(t0);
            times.push_back(ti);
            ref_rates.push_back(ref.flop() / tg * 1e-9);
            ratios.push_back((fl / ti) / (ref.flop() / tg));
          }
          if (!engine.weights()[static_cast<std::size_t>(layers)].allFinite())
            std::cerr << "warning: " << algo_name << " d=" << sh.d << " n=" << sh.n << " diverged (timing still valid)\n";
          const double sec = median(times);
          const double rate = fl / sec * 1e-9;
          t.add({std::to_string(sh.d), std::to_string(sh.n), act_name, algo_name, std::to_string(thr), duration(sec),
                 duration(minimum(times)), fixed(fl * 1e-9, 2), fixed(rate, 2), fixed(median(ref_rates), 2),
                 fixed(100 * median(ratios), 0) + "%", fixed(g_sq, 2), fixed(100 * rate / g_sq, 0) + "%"});
          if (breakdown && var == core::variant::linearized) {
            std::map<std::string, breakdown_entry> b = timed_sweep(engine);
            breakdowns.push_back({algo_name + " " + act_name + " d=" + std::to_string(sh.d) + " n=" + std::to_string(sh.n) +
                                      " threads=" + std::to_string(thr) + " (one sweep; GEMM dxd.dxn " +
                                      fixed(median(ref_rates), 2) + ", square " + fixed(g_sq, 2) + " GFLOP/s)",
                                  std::move(b)});
          }
        }
      }
    }
  }
  t.print(std::cout, markdown);
  std::cout << "\nGFLOP/iter counts products 2mkn, rank-k updates m^2 k, Cholesky m^3/3 and triangular solves 2 m^2 r\n"
               "(docs/benchmarks.md); element-wise work is not counted. iter/GEMM: median over the repetitions of\n"
               "(iteration rate / rate of the d x d times d x n product timed just before it); issue 2 target: >= 80%\n"
               "at d = n = 1024. iter/square: iteration rate / square product rate (k = min(d, 1024)).\n";
  for (const auto& [title, b] : breakdowns) {
    std::cout << "\nbreakdown: " << title << "\n";
    double total = 0;
    for (const auto& kv : b) total += kv.second.seconds;
    table bt({"update", "calls", "seconds", "share", "GFLOP", "GFLOP/s"});
    for (const auto& [label, e] : b)
      bt.add({label, std::to_string(e.calls), fixed(e.seconds, 4), fixed(100 * e.seconds / total, 1) + "%",
              fixed(e.flop * 1e-9, 3), fixed(e.flop / e.seconds * 1e-9, 2)});
    bt.add({"total", "", fixed(total, 4), "100%", "", ""});
    bt.print(std::cout, markdown);
  }
  return 0;
}

}  // namespace
}  // namespace radmm::bench

int main(int argc, char** argv) {
  return radmm::bench::bench_main("radmm-bench-serial", radmm::bench::usage_text, radmm::bench::run, argc, argv);
}
