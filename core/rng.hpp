#pragma once
// A random generator whose output is the same on every platform and standard
// library: xoshiro256** seeded through splitmix64, normals by the Marsaglia polar
// method (only +, *, sqrt and log, so no std::normal_distribution differences).
#include <cstdint>
#include <vector>

namespace radmm::core {

class rng {
 public:
  explicit rng(std::uint64_t seed);
  std::uint64_t next_u64();
  double uniform();                       // [0, 1), 53 random bits
  double uniform(double lo, double hi);   // [lo, hi)
  double normal();                        // standard normal
  std::uint64_t below(std::uint64_t n);   // uniform integer in [0, n), unbiased
  // Fisher-Yates permutation of 0..n-1.
  std::vector<std::int64_t> permutation(std::int64_t n);

  struct state_t {
    std::uint64_t s[4];
    bool has_spare;
    double spare;
  };
  state_t state() const;
  void set_state(const state_t& st);

 private:
  std::uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace radmm::core
