// CSV reading, target selection, built-in data sets, scaling and splits. Error
// tests check that the message points at the file, line and column at fault.
#include "core/data.hpp"

#include "core/model.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace fs = std::filesystem;
using radmm::core::data_error;
using radmm::core::mat;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("radmm-data-test-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& contents) const {
    const fs::path p = path / name;
    std::ofstream(p, std::ios::binary) << contents;
    return p.string();
  }
};

std::string csv_error(const temp_dir& d, const std::string& contents) {
  const std::string p = d.file("t.csv", contents);
  try {
    radmm::core::read_csv(p);
  } catch (const data_error& e) {
    const std::string msg = e.what();
    // Every message starts with the path; strip it so tests read "LINE:COL: ...".
    REQUIRE(msg.rfind(p + ":", 0) == 0);
    return msg.substr(p.size() + 1);
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("read_csv detects commas, a header and reads the values") {
  temp_dir d;
  const auto t = radmm::core::read_csv(d.file("a.csv", "a,b,c\n1,2,3\n4.5,-5e-1,6\n"));
  CHECK(t.columns == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(t.rows.rows() == 2);
  REQUIRE(t.rows.cols() == 3);
  CHECK(t.rows(1, 0) == 4.5);
  CHECK(t.rows(1, 1) == -0.5);
}

TEST_CASE("read_csv accepts semicolons, quoted fields, CRLF and a trailing empty line") {
  temp_dir d;
  const auto t = radmm::core::read_csv(d.file("b.csv", "\"x; \"\"one\"\"\";\"y\"\r\n1;\"2\"\r\n3;4\r\n\r\n"));
  CHECK(t.columns == std::vector<std::string>{"x; \"one\"", "y"});
  REQUIRE(t.rows.rows() == 2);
  CHECK(t.rows(0, 1) == 2);
  CHECK(t.rows(1, 0) == 3);
}

TEST_CASE("read_csv without a header names the columns c0, c1, ...") {
  temp_dir d;
  const auto t = radmm::core::read_csv(d.file("c.csv", "1,2\n3,4"));
  CHECK(t.columns == std::vector<std::string>{"c0", "c1"});
  CHECK(t.rows.rows() == 2);
  CHECK(t.rows(1, 1) == 4);
}

TEST_CASE("read_csv errors name the file, line and column") {
  temp_dir d;
  CHECK(csv_error(d, "") == "1:1: file is empty");
  CHECK(csv_error(d, "\n\n") == "1:1: file is empty");
  CHECK(csv_error(d, "a,b\n") == "2:1: no data rows after the header (2 columns)");
  CHECK(csv_error(d, "a,b\n1,2\n3\n") == "3:1: row has 1 column, expected 2 (separator ',')");
  CHECK(csv_error(d, "a,b\n1,2\n3,4,5\n") == "3:1: row has 3 columns, expected 2 (separator ',')");
  CHECK(csv_error(d, "a,b\n1,2\n3,x4\n") == "3:3: non-numeric field \"x4\" in column 'b'");
  CHECK(csv_error(d, "a;b\n1;2\n3;1,5\n") == "3:3: non-numeric field \"1,5\" in column 'b'");
  CHECK(csv_error(d, "a,b\n1,\n") == "2:3: empty field in column 'b'");
  CHECK(csv_error(d, "a,b\nnan,2\n") ==
        "2:1: value \"nan\" in column 'a' is NaN; only finite numbers are allowed");
  CHECK(csv_error(d, "a,b\n1,-inf\n") ==
        "2:3: value \"-inf\" in column 'b' is infinite; only finite numbers are allowed");
  CHECK(csv_error(d, "a,b\n1,1e999\n") ==
        "2:3: value \"1e999\" in column 'b' is infinite; only finite numbers are allowed");
  CHECK(csv_error(d, "a,b\n1,\"2\n") == "2:3: unterminated quoted field");
}

TEST_CASE("read_csv names a missing file and the reason") {
  try {
    radmm::core::read_csv("/nonexistent/data.csv");
    FAIL("expected data_error");
  } catch (const data_error& e) {
    CHECK(std::string(e.what()) == "/nonexistent/data.csv: cannot open: No such file or directory");
  }
}

TEST_CASE("the Wine Quality red data loads with its quoted semicolon header") {
  const fs::path p = fs::path(RADMM_SHARED_DIR) / "data" / "wine-quality" / "winequality-red.csv";
  if (!fs::exists(p)) {
    MESSAGE("skipped: " << p.string() << " is absent");
    return;
  }
  const auto t = radmm::core::read_csv(p.string());
  CHECK(t.rows.rows() == 1599);
  CHECK(t.rows.cols() == 12);
  CHECK(t.columns.front() == "fixed acidity");
  CHECK(t.columns.back() == "quality");
  CHECK(t.rows(0, 0) == 7.4);
  const auto ds = radmm::core::split_target(t, "quality", p.string());
  CHECK(ds.X.rows() == 11);
  CHECK(ds.X.cols() == 1599);
  CHECK(ds.Y.rows() == 1);
  CHECK(ds.Y(0, 0) == 5);
  CHECK(ds.target_names == std::vector<std::string>{"quality"});
}

TEST_CASE("split_target picks the target by name, index or negative index") {
  radmm::core::table t;
  t.columns = {"a", "b", "c"};
  t.rows.resize(2, 3);
  t.rows << 1, 2, 3, 4, 5, 6;
  for (const std::string target : {"b", "1", "-2"}) {
    const auto ds = radmm::core::split_target(t, target, "t.csv");
    CHECK(ds.Y(0, 1) == 5);
    CHECK(ds.feature_names == std::vector<std::string>{"a", "c"});
    CHECK(ds.X(1, 0) == 3);
    CHECK(ds.X.cols() == 2);
  }
  CHECK(radmm::core::split_target(t, "-1", "t.csv").target_names == std::vector<std::string>{"c"});
}

TEST_CASE("an unknown target names the source and lists the columns") {
  radmm::core::table t;
  t.columns = {"alpha", "beta"};
  t.rows = mat::Zero(1, 2);
  CHECK_THROWS_WITH_AS(radmm::core::split_target(t, "gamma", "w.csv"),
                       "w.csv: unknown target 'gamma'; available columns: 'alpha' (0), 'beta' (1)",
                       data_error);
  CHECK_THROWS_WITH_AS(radmm::core::split_target(t, "5", "w.csv"),
                       "w.csv: target column index 5 is out of range for 2 columns; available columns: "
                       "'alpha' (0), 'beta' (1)",
                       data_error);
}

TEST_CASE("the oscillating function follows the three regions of Section VII-B") {
  const double low[3] = {-2, -1.5, -1};  // all <= -1: x1 x2^2 x3
  CHECK(radmm::core::oscillating_function(low, 3) == doctest::Approx(-2 * 2.25 * -1));
  const double mid[3] = {0.5, -1.5, 1};  // all <= 1: every square
  CHECK(radmm::core::oscillating_function(mid, 3) == doctest::Approx(0.25 * 2.25 * 1));
  const double high[4] = {1.5, -2, 0.5, 3};  // some > 1: x1^2 x2 x3^2 x4
  CHECK(radmm::core::oscillating_function(high, 4) == doctest::Approx(2.25 * -2 * 0.25 * 3));
}

TEST_CASE("built-in data sets are deterministic for a seed and have the asked shape") {
  for (const std::string name : {"oscillating", "teacher"}) {
    const auto a = radmm::core::builtin_dataset(name, 50, 4, 7);
    const auto b = radmm::core::builtin_dataset(name, 50, 4, 7);
    const auto c = radmm::core::builtin_dataset(name, 50, 4, 8);
    CHECK(a.X.rows() == 4);
    CHECK(a.X.cols() == 50);
    CHECK(a.Y.rows() == 1);
    CHECK(a.Y.cols() == 50);
    CHECK(a.X == b.X);
    CHECK(a.Y == b.Y);
    CHECK(a.X != c.X);
    CHECK(a.Y.allFinite());
    CHECK(a.feature_names.size() == 4);
  }
  const auto osc = radmm::core::builtin_dataset("oscillating", 200, 3, 1);
  CHECK(osc.X.minCoeff() >= -2.0);
  CHECK(osc.X.maxCoeff() < 2.0);
  for (Eigen::Index s = 0; s < 200; ++s)
    CHECK(osc.Y(0, s) == radmm::core::oscillating_function(osc.X.col(s).data(), 3));
}

TEST_CASE("the teacher data set is a tanh residual network plus small noise") {
  const auto d = radmm::core::builtin_dataset("teacher", 100, 5, 3);
  radmm::core::architecture arch;
  arch.layers = 3;
  arch.input_dim = 5;
  arch.width = 5;
  arch.output_dim = 1;
  arch.act = radmm::core::activation::tanh;
  auto W = radmm::core::kaiming_normal(arch, 4);
  for (int i = 1; i <= 3; ++i) W[static_cast<std::size_t>(i)] *= 0.5;
  const mat clean = radmm::core::predict(arch, W, d.X);
  const double noise_std = std::sqrt((d.Y - clean).squaredNorm() / 100.0);
  CHECK(noise_std > 0.005);
  CHECK(noise_std < 0.02);
}

TEST_CASE("an unknown built-in data set lists the available names") {
  CHECK_THROWS_WITH_AS(radmm::core::builtin_dataset("spiral", 10, 2, 1),
                       "unknown built-in dataset 'spiral' (available: oscillating, teacher)", data_error);
}

TEST_CASE("min-max scaling maps rows to [0, 1], constant rows to 0, and inverts") {
  mat m(2, 3);
  m << 1, 3, 5, 7, 7, 7;
  const auto s = radmm::core::minmax_scaler::fit(m);
  CHECK(s.enabled);
  const mat t = s.transform(m);
  CHECK(t(0, 0) == 0);
  CHECK(t(0, 1) == 0.5);
  CHECK(t(0, 2) == 1);
  CHECK(t.row(1).isZero());
  CHECK(s.inverse(t).isApprox(m));
  CHECK(s.inverse(t)(1, 2) == 7);
  const auto id = radmm::core::minmax_scaler::identity(2);
  CHECK_FALSE(id.enabled);
  CHECK(id.transform(m) == m);
  CHECK(id.inverse(m) == m);
}

TEST_CASE("make_split is seeded, disjoint, complete and rounds the test share") {
  const auto a = radmm::core::make_split(10, 0.25, 5);
  const auto b = radmm::core::make_split(10, 0.25, 5);
  CHECK(a.test == b.test);
  CHECK(a.train == b.train);
  CHECK(a.test.size() == 3);  // round(2.5) = 3
  CHECK(a.train.size() == 7);
  std::set<std::int64_t> all(a.train.begin(), a.train.end());
  all.insert(a.test.begin(), a.test.end());
  CHECK(all.size() == 10);
  CHECK(radmm::core::make_split(1, 0.0, 1).train.size() == 1);
  CHECK(radmm::core::make_split(4, 0.0, 1).test.empty());
}

TEST_CASE("make_split says how many rows there are when a side would be empty") {
  CHECK_THROWS_WITH_AS(
      radmm::core::make_split(3, 0.1, 1),
      "--test-fraction 0.1 of 3 rows gives 0 test samples; use more rows or --test-fraction 0", data_error);
  CHECK_THROWS_WITH_AS(radmm::core::make_split(1, 0.6, 1),
                       "--test-fraction 0.6 of 1 row leaves no training samples; at least 1 is needed",
                       data_error);
  CHECK_THROWS_AS(radmm::core::make_split(10, 1.0, 1), data_error);
  CHECK_THROWS_AS(radmm::core::make_split(10, -0.1, 1), data_error);
}

TEST_CASE("take_columns and add_bias_row build the training matrices") {
  mat m(2, 3);
  m << 1, 2, 3, 4, 5, 6;
  const mat t = radmm::core::take_columns(m, {2, 0});
  CHECK(t(0, 0) == 3);
  CHECK(t(1, 1) == 4);
  const mat b = radmm::core::add_bias_row(m);
  CHECK(b.rows() == 3);
  CHECK(b.row(2).isOnes());
  CHECK(b.topRows(2) == m);
}
