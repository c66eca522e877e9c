#pragma once
// Data sets for training: CSV files, built-in generators, min-max scaling,
// seeded train/test split. Matrices follow the paper: features x samples.
// Every failure throws radmm::core::data_error with a message that names the
// file, line and column (or the flag) at fault.
#include "core/types.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace radmm::core {

struct data_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct table {
  std::vector<std::string> columns;  // header names (or "c0", "c1", ... without header)
  mat rows;                          // one sample per row, as read (n x columns)
};

// Reads a CSV file. The separator (',' or ';') is detected from the first line;
// a header (quoted or not) is detected when the first line has a non-numeric
// field. Empty file, ragged row, non-numeric field, NaN or Inf: data_error with
// "file:line:column: ...".
table read_csv(const std::string& path);
// The same on text already in memory; `path` names it in errors (fuzzing, tests).
table parse_csv(std::string text, const std::string& path);

struct dataset {
  mat X;  // d0 x n
  mat Y;  // q x n
  std::vector<std::string> feature_names;
  std::vector<std::string> target_names;
};

// Picks the target column by name or 0-based index ("quality", "11", "-1" = last);
// every other column becomes a feature.
dataset split_target(const table& t, const std::string& target, const std::string& source);

// Built-in data sets:
//  "oscillating": Section VII-B's oscillating function of d inputs drawn uniformly in [-2, 2].
//  "teacher": y = f(x) for a random residual "teacher" network (tanh, N = 3, width d),
//             x ~ N(0, 1), plus Gaussian noise of standard deviation 0.01.
dataset builtin_dataset(const std::string& name, int samples, int features, std::uint64_t seed);
std::vector<std::string> builtin_names();

// The oscillating function of Section VII-B for one sample (d >= 1).
double oscillating_function(const double* x, int d);

// Min-max scaling to [0, 1] per row (feature), fitted on the training split only
// (Appendix IX-C). Constant rows map to 0.
struct minmax_scaler {
  vec lo, hi;
  bool enabled = false;
  static minmax_scaler fit(const_mat_ref data);
  static minmax_scaler identity(Eigen::Index rows);
  mat transform(const_mat_ref data) const;
  mat inverse(const_mat_ref data) const;
};

struct split_indices {
  std::vector<std::int64_t> train, test;
};
// Seeded shuffle, then the first round(test_fraction * n) samples go to test.
// test_fraction in [0, 1); throws data_error when a side would be empty but is needed.
split_indices make_split(std::int64_t n, double test_fraction, std::uint64_t seed);
mat take_columns(const_mat_ref m, const std::vector<std::int64_t>& cols);

// Appends a constant row of ones (the input bias feature, --bias on).
mat add_bias_row(const_mat_ref X);

}  // namespace radmm::core
