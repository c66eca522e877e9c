#include "core/data.hpp"

#include "core/model.hpp"
#include "core/npy.hpp"
#include "core/rng.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace radmm::core {
namespace {

// ---------------------------------------------------------------- CSV

struct field {
  std::string text;
  int column;  // 1-based character column where the field starts
  bool quoted;
};

std::string at(const std::string& path, int line, int col) {
  return path + ":" + std::to_string(line) + ":" + std::to_string(col) + ": ";
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// Splits one line into fields. Quotes follow RFC 4180: a field that starts with
// '"' runs to the matching '"', and "" inside it is one quote character.
std::vector<field> split_line(const std::string& line, char sep, const std::string& path, int lineno) {
  std::vector<field> out;
  std::size_t i = 0;
  for (;;) {
    field f{"", static_cast<int>(i) + 1, false};
    std::size_t j = i;
    while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
    if (j < line.size() && line[j] == '"') {
      f.quoted = true;
      f.column = static_cast<int>(j) + 1;
      ++j;
      for (;;) {
        if (j >= line.size()) throw data_error(at(path, lineno, f.column) + "unterminated quoted field");
        if (line[j] == '"') {
          if (j + 1 < line.size() && line[j + 1] == '"') {
            f.text.push_back('"');
            j += 2;
            continue;
          }
          ++j;
          break;
        }
        f.text.push_back(line[j++]);
      }
      while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
      if (j < line.size() && line[j] != sep)
        throw data_error(at(path, lineno, static_cast<int>(j) + 1) + "unexpected text after a quoted field");
    } else {
      const std::size_t e = line.find(sep, i);
      j = e == std::string::npos ? line.size() : e;
      f.text = trim(line.substr(i, j - i));
    }
    out.push_back(std::move(f));
    if (j >= line.size()) break;
    i = j + 1;  // skip the separator
  }
  return out;
}

// Counts separators outside quotes, to pick ',' or ';' from the first line.
char detect_separator(const std::string& line) {
  int commas = 0, semis = 0;
  bool in_quotes = false;
  for (char c : line) {
    if (c == '"')
      in_quotes = !in_quotes;
    else if (!in_quotes && c == ',')
      ++commas;
    else if (!in_quotes && c == ';')
      ++semis;
  }
  // European CSV writes decimal commas with ';' separators, so ';' wins whenever
  // it is present at all and outnumbers ','.
  return semis > commas ? ';' : ',';
}

bool parse_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  // Out-of-range values set ERANGE: overflow is +-HUGE_VAL (rejected as infinite
  // below); underflow to a denormal or zero is a fine reading of the text.
  return end == s.c_str() + s.size();
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string rows_text(std::int64_t n) { return std::to_string(n) + (n == 1 ? " row" : " rows"); }

}  // namespace

table read_csv(const std::string& path) { return parse_csv(read_file(path), path); }

table parse_csv(std::string text, const std::string& path) {
  // A UTF-8 byte-order mark (spreadsheet exports) is not part of the first name.
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);

  std::vector<std::string> lines;
  {
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) nl = text.size();
      std::string l = text.substr(pos, nl - pos);
      if (!l.empty() && l.back() == '\r') l.pop_back();
      lines.push_back(std::move(l));
      pos = nl + 1;
    }
  }
  // Trailing blank lines are an editor artefact, not rows.
  while (!lines.empty() && trim(lines.back()).empty()) lines.pop_back();
  if (lines.empty()) throw data_error(at(path, 1, 1) + "file is empty");

  const char sep = detect_separator(lines[0]);
  std::vector<field> first = split_line(lines[0], sep, path, 1);
  bool has_header = false;
  for (const auto& f : first) {
    double v;
    if (!parse_number(f.text, v)) has_header = true;
  }

  table t;
  const std::size_t ncols = first.size();
  if (has_header) {
    for (const auto& f : first) t.columns.push_back(f.text);
  } else {
    for (std::size_t c = 0; c < ncols; ++c) t.columns.push_back("c" + std::to_string(c));
  }
  const std::size_t first_data = has_header ? 1 : 0;
  if (lines.size() <= first_data)
    throw data_error(at(path, 2, 1) + "no data rows after the header (" + std::to_string(ncols) +
                     " columns)");

  const auto nrows = static_cast<Eigen::Index>(lines.size() - first_data);
  t.rows.resize(nrows, static_cast<Eigen::Index>(ncols));
  for (std::size_t li = first_data; li < lines.size(); ++li) {
    const int lineno = static_cast<int>(li) + 1;
    const std::vector<field> fs = li == 0 ? first : split_line(lines[li], sep, path, lineno);
    if (fs.size() != ncols)
      throw data_error(at(path, lineno, 1) + "row has " + std::to_string(fs.size()) + " column" +
                       (fs.size() == 1 ? "" : "s") + ", expected " + std::to_string(ncols) + " (separator '" +
                       sep + "')");
    const auto r = static_cast<Eigen::Index>(li - first_data);
    for (std::size_t c = 0; c < ncols; ++c) {
      double v;
      if (!parse_number(fs[c].text, v))
        throw data_error(
            at(path, lineno, fs[c].column) +
            (fs[c].text.empty() ? std::string("empty field") : "non-numeric field \"" + fs[c].text + "\"") +
            " in column '" + t.columns[c] + "'");
      if (!std::isfinite(v))
        throw data_error(at(path, lineno, fs[c].column) + "value \"" + fs[c].text + "\" in column '" +
                         t.columns[c] + "' is " + (std::isnan(v) ? "NaN" : "infinite") +
                         "; only finite numbers are allowed");
      t.rows(r, static_cast<Eigen::Index>(c)) = v;
    }
  }
  return t;
}

dataset split_target(const table& t, const std::string& target, const std::string& source) {
  const auto ncols = static_cast<Eigen::Index>(t.columns.size());
  auto available = [&] {
    std::string s;
    for (std::size_t c = 0; c < t.columns.size(); ++c) {
      if (c) s += ", ";
      s += "'" + t.columns[c] + "' (" + std::to_string(c) + ")";
    }
    return s;
  };
  Eigen::Index idx = -1;
  for (Eigen::Index c = 0; c < ncols; ++c)
    if (t.columns[static_cast<std::size_t>(c)] == target) idx = c;
  if (idx < 0 && !target.empty()) {
    // Not a column name: maybe an index, negative counting from the end.
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(target.c_str(), &end, 10);
    if (end == target.c_str() + target.size() && errno == 0) {
      const long long k = v < 0 ? v + ncols : v;
      if (k < 0 || k >= ncols)
        throw data_error(source + ": target column index " + target + " is out of range for " +
                         std::to_string(ncols) + " columns; available columns: " + available());
      idx = static_cast<Eigen::Index>(k);
    }
  }
  if (idx < 0)
    throw data_error(source + ": unknown target '" + target + "'; available columns: " + available());
  if (ncols < 2)
    throw data_error(source + ": the data has only the target column '" +
                     t.columns[static_cast<std::size_t>(idx)] + "'; at least one feature column is needed");

  dataset d;
  const Eigen::Index n = t.rows.rows();
  d.X.resize(ncols - 1, n);
  d.Y = t.rows.col(idx).transpose();
  Eigen::Index f = 0;
  for (Eigen::Index c = 0; c < ncols; ++c) {
    if (c == idx) continue;
    d.X.row(f++) = t.rows.col(c).transpose();
    d.feature_names.push_back(t.columns[static_cast<std::size_t>(c)]);
  }
  d.target_names.push_back(t.columns[static_cast<std::size_t>(idx)]);
  return d;
}

double oscillating_function(const double* x, int d) {
  bool all_le_minus1 = true, all_le_1 = true;
  for (int j = 0; j < d; ++j) {
    all_le_minus1 = all_le_minus1 && x[j] <= -1.0;
    all_le_1 = all_le_1 && x[j] <= 1.0;
  }
  // Section VII-B: the power pattern changes between (-inf,-1]^d, the rest of
  // (-inf,1]^d, and everything else, which makes the target oscillate across regions.
  double y = 1.0;
  for (int j = 0; j < d; ++j) {
    const bool odd = (j % 2) == 0;  // position j+1 in the paper's 1-based indexing
    int power;
    if (all_le_minus1)
      power = odd ? 1 : 2;
    else if (all_le_1)
      power = 2;
    else
      power = odd ? 2 : 1;
    y *= power == 2 ? x[j] * x[j] : x[j];
  }
  return y;
}

std::vector<std::string> builtin_names() { return {"oscillating", "teacher"}; }

dataset builtin_dataset(const std::string& name, int samples, int features, std::uint64_t seed) {
  if (name != "oscillating" && name != "teacher") {
    std::string names;
    for (const auto& n : builtin_names()) names += (names.empty() ? "" : ", ") + n;
    throw data_error("unknown built-in dataset '" + name + "' (available: " + names + ")");
  }
  if (samples < 1) throw data_error("--samples must be at least 1 (got " + std::to_string(samples) + ")");
  if (features < 1) throw data_error("--features must be at least 1 (got " + std::to_string(features) + ")");

  dataset d;
  rng gen(seed);
  d.X.resize(features, samples);
  d.Y.resize(1, samples);
  for (int j = 1; j <= features; ++j) d.feature_names.push_back("x" + std::to_string(j));
  d.target_names.push_back("y");

  if (name == "oscillating") {
    // Drawn sample by sample (column-major order), so a prefix of a larger data set
    // with the same seed is the smaller data set.
    for (Eigen::Index k = 0; k < d.X.size(); ++k) d.X.data()[k] = gen.uniform(-2.0, 2.0);
    for (int s = 0; s < samples; ++s) d.Y(0, s) = oscillating_function(d.X.col(s).data(), features);
  } else {
    for (Eigen::Index k = 0; k < d.X.size(); ++k) d.X.data()[k] = gen.normal();
    architecture arch;
    arch.layers = 3;
    arch.input_dim = features;
    arch.width = features;
    arch.output_dim = 1;
    arch.act = activation::tanh;
    weight_set W = kaiming_normal(arch, seed + 1);
    // Halved weights keep tanh out of saturation, so the target is a smooth,
    // learnable function rather than a near-step.
    for (int i = 1; i <= arch.layers; ++i) W[static_cast<std::size_t>(i)] *= 0.5;
    d.Y = predict(arch, W, d.X);
    for (Eigen::Index k = 0; k < d.Y.size(); ++k) d.Y.data()[k] += 0.01 * gen.normal();
  }
  return d;
}

// ---------------------------------------------------------------- scaling

minmax_scaler minmax_scaler::fit(const_mat_ref data) {
  if (data.cols() < 1) throw std::invalid_argument("minmax_scaler::fit: no samples");
  minmax_scaler s;
  s.lo = data.rowwise().minCoeff();
  s.hi = data.rowwise().maxCoeff();
  s.enabled = true;
  return s;
}

minmax_scaler minmax_scaler::identity(Eigen::Index rows) {
  minmax_scaler s;
  s.lo = vec::Zero(rows);
  s.hi = vec::Ones(rows);
  s.enabled = false;
  return s;
}

namespace {
void check_rows(const minmax_scaler& s, const_mat_ref data, const char* what) {
  if (data.rows() != s.lo.size() || s.hi.size() != s.lo.size())
    throw std::invalid_argument(std::string("minmax_scaler::") + what + ": data has " +
                                std::to_string(data.rows()) + " rows, the scaler was fitted on " +
                                std::to_string(s.lo.size()));
}
}  // namespace

mat minmax_scaler::transform(const_mat_ref data) const {
  if (!enabled) return data;
  check_rows(*this, data, "transform");
  mat out(data.rows(), data.cols());
  for (Eigen::Index r = 0; r < data.rows(); ++r) {
    const double span = hi(r) - lo(r);
    // A constant feature carries no information; 0 keeps it finite.
    if (span > 0)
      out.row(r) = (data.row(r).array() - lo(r)) / span;
    else
      out.row(r).setZero();
  }
  return out;
}

mat minmax_scaler::inverse(const_mat_ref data) const {
  if (!enabled) return data;
  check_rows(*this, data, "inverse");
  mat out(data.rows(), data.cols());
  for (Eigen::Index r = 0; r < data.rows(); ++r) out.row(r) = data.row(r).array() * (hi(r) - lo(r)) + lo(r);
  return out;
}

// ---------------------------------------------------------------- splits

split_indices make_split(std::int64_t n, double test_fraction, std::uint64_t seed) {
  if (!(test_fraction >= 0.0 && test_fraction < 1.0))
    throw data_error("--test-fraction must be in [0, 1) (got " + num(test_fraction) + ")");
  if (n < 1) throw data_error("the data has no rows; training needs at least 1");
  const auto n_test = static_cast<std::int64_t>(std::llround(test_fraction * static_cast<double>(n)));
  const std::int64_t n_train = n - n_test;
  if (test_fraction > 0 && n_test == 0)
    throw data_error("--test-fraction " + num(test_fraction) + " of " + rows_text(n) +
                     " gives 0 test samples; use more rows or --test-fraction 0");
  if (n_train < 1)
    throw data_error("--test-fraction " + num(test_fraction) + " of " + rows_text(n) +
                     " leaves no training samples; at least 1 is needed");
  rng gen(seed);
  const std::vector<std::int64_t> perm = gen.permutation(n);
  split_indices s;
  s.test.assign(perm.begin(), perm.begin() + n_test);
  s.train.assign(perm.begin() + n_test, perm.end());
  return s;
}

mat take_columns(const_mat_ref m, const std::vector<std::int64_t>& cols) {
  mat out(m.rows(), static_cast<Eigen::Index>(cols.size()));
  for (std::size_t k = 0; k < cols.size(); ++k) {
    if (cols[k] < 0 || cols[k] >= m.cols())
      throw std::invalid_argument("take_columns: index " + std::to_string(cols[k]) + " outside 0.." +
                                  std::to_string(m.cols() - 1));
    out.col(static_cast<Eigen::Index>(k)) = m.col(cols[k]);
  }
  return out;
}

mat add_bias_row(const_mat_ref X) {
  mat out(X.rows() + 1, X.cols());
  out.topRows(X.rows()) = X;
  out.row(X.rows()).setOnes();
  return out;
}

}  // namespace radmm::core
