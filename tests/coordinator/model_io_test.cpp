// Model directories (model.json + W_i.npy), their atomic publication, and the
// JSON reader/writer underneath. Failures must name the file at fault and leave
// no partial output behind.
#include "coordinator/model_io.hpp"

#include "coordinator/fs_util.hpp"
#include "coordinator/json.hpp"
#include "core/npy.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace json = radmm::coordinator::json;
using radmm::coordinator::model_error;
using radmm::coordinator::model_files;
using radmm::core::mat;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("radmm-model-io-test-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
  // Names in `path` other than the expected ones: leftovers of a failed write.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

model_files sample_model() {
  model_files m;
  m.arch.layers = 3;
  m.arch.input_dim = 3;  // two features plus the bias row
  m.arch.width = 4;
  m.arch.output_dim = 1;
  m.arch.act = radmm::core::activation::tanh;
  m.W = radmm::core::kaiming_normal(m.arch, 11);
  m.bias = true;
  m.feature_names = {"alcohol", "p\"H"};
  m.target_names = {"quality"};
  mat X(2, 3);
  X << 1, 2, 3, 0.1, 0.7, 0.3;
  m.x_scaler = radmm::core::minmax_scaler::fit(X);
  m.y_scaler = radmm::core::minmax_scaler::identity(1);
  m.config_text = "layers = 3\nbeta = 0.1\n";
  m.metrics_json = R"({"iterations": 10, "mse_train": 0.125, "mse_test": null})";
  return m;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

std::string model_error_of(const std::string& dir) {
  try {
    radmm::coordinator::read_model_dir(dir);
  } catch (const model_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("a model directory round trips architecture, weights, scalers, names, config and metrics") {
  temp_dir d;
  const model_files m = sample_model();
  const std::string out = (d.path / "run").string();
  radmm::coordinator::write_model_dir(out, m, {{"metrics.csv", "k,J\n0,1\n"}, {"config.txt", m.config_text}},
                                      false);
  CHECK(d.entries() == std::vector<std::string>{"run"});
  CHECK(fs::exists(fs::path(out) / "metrics.csv"));
  CHECK(read_text(fs::path(out) / "config.txt") == m.config_text);

  const model_files r = radmm::coordinator::read_model_dir(out);
  CHECK(r.arch.layers == 3);
  CHECK(r.arch.input_dim == 3);
  CHECK(r.arch.width == 4);
  CHECK(r.arch.output_dim == 1);
  CHECK(r.arch.act == radmm::core::activation::tanh);
  for (int i = 1; i <= 3; ++i) CHECK(r.W[static_cast<std::size_t>(i)] == m.W[static_cast<std::size_t>(i)]);
  CHECK(r.bias);
  CHECK(r.feature_names == m.feature_names);
  CHECK(r.target_names == m.target_names);
  CHECK(r.x_scaler.enabled);
  CHECK(r.x_scaler.lo == m.x_scaler.lo);
  CHECK(r.x_scaler.hi == m.x_scaler.hi);
  CHECK_FALSE(r.y_scaler.enabled);
  CHECK(r.y_scaler.lo.size() == 1);
  CHECK(r.config_text == m.config_text);
  CHECK(json::parse(r.metrics_json) == json::parse(m.metrics_json));

  const json::value doc = json::parse(read_text(fs::path(out) / "model.json"));
  CHECK(doc.at("format").as_string() == "radmm-model");
  CHECK(doc.at("version").as_int() == 1);
  CHECK(doc.at("y_scaler").is_null());
  CHECK(doc.at("final_metrics").at("mse_train").as_number() == 0.125);
  // W_i.npy are plain NumPy files with rows = outputs.
  CHECK(radmm::core::read_npy((fs::path(out) / "W_3.npy").string()).rows() == 1);
}

TEST_CASE("an existing non-empty output directory is refused without force and replaced with it") {
  temp_dir d;
  const model_files m = sample_model();
  const fs::path out = d.path / "run";
  fs::create_directories(out);
  write_text(out / "keep.txt", "old");
  CHECK_THROWS_WITH_AS(
      radmm::coordinator::write_model_dir(out.string(), m, {}, false),
      (out.string() + ": directory exists and is not empty; pass --force to replace it").c_str(),
      radmm::coordinator::output_error);
  CHECK(read_text(out / "keep.txt") == "old");
  CHECK(d.entries() == std::vector<std::string>{"run"});

  radmm::coordinator::write_model_dir(out.string() + "/", m, {}, true);
  CHECK_FALSE(fs::exists(out / "keep.txt"));
  CHECK(fs::exists(out / "model.json"));
  CHECK(d.entries() == std::vector<std::string>{"run"});

  // An empty directory (e.g. made by the user beforehand) is fine without force.
  fs::create_directories(d.path / "empty");
  radmm::coordinator::write_model_dir((d.path / "empty").string(), m, {}, false);
  CHECK(fs::exists(d.path / "empty" / "W_1.npy"));
}

TEST_CASE("a failure while writing leaves neither the output nor a temporary directory") {
  temp_dir d;
  const fs::path out = d.path / "run";
  CHECK_THROWS_WITH(radmm::coordinator::publish_directory(out.string(), false,
                                                          [](const std::string& tmp) {
                                                            write_text(fs::path(tmp) / "half.txt", "x");
                                                            throw std::runtime_error("disk full (simulated)");
                                                          }),
                    "disk full (simulated)");
  CHECK(d.entries().empty());

  // The same with --force over an existing run: the old run survives intact.
  fs::create_directories(out);
  write_text(out / "old.txt", "old");
  CHECK_THROWS(radmm::coordinator::publish_directory(
      out.string(), true, [](const std::string&) { throw std::runtime_error("fail"); }));
  CHECK(d.entries() == std::vector<std::string>{"run"});
  CHECK(read_text(out / "old.txt") == "old");

  CHECK_THROWS_WITH_AS(radmm::coordinator::publish_directory((d.path / ".").string(), true, [](const std::string&) {}),
                       ((d.path / ".").string() + ": cannot be replaced as a whole; name a new directory").c_str(),
                       radmm::coordinator::output_error);

  // Invalid models are rejected before anything is created.
  model_files bad = sample_model();
  bad.W[2] = mat::Zero(2, 2);
  CHECK_THROWS_WITH_AS(radmm::coordinator::write_model_dir((d.path / "bad").string(), bad, {}, false),
                       "model: W_2 is 2x2, expected 4x4", model_error);
  CHECK_THROWS_WITH_AS(
      radmm::coordinator::write_model_dir((d.path / "bad").string(), sample_model(), {{"W_1.npy", "x"}},
                                          false),
      "extra output file name 'W_1.npy' is not allowed (plain names, not model.json or W_i.npy)",
      model_error);
  CHECK(d.entries() == std::vector<std::string>{"run"});
}

TEST_CASE("reading a model with a missing weight file names the file") {
  temp_dir d;
  const fs::path out = d.path / "run";
  radmm::coordinator::write_model_dir(out.string(), sample_model(), {}, false);
  fs::remove(out / "W_2.npy");
  CHECK(model_error_of(out.string()) ==
        (out / "W_2.npy").string() + ": missing; a 3-layer model needs W_1.npy .. W_3.npy");
  CHECK(model_error_of((d.path / "nope").string()) ==
        (d.path / "nope").string() + ": not a model directory (it does not exist)");
}

TEST_CASE("a corrupted model.json is reported with file, line and column") {
  temp_dir d;
  const fs::path out = d.path / "run";
  radmm::coordinator::write_model_dir(out.string(), sample_model(), {}, false);
  const fs::path mj = out / "model.json";
  const std::string good = read_text(mj);

  write_text(mj, "{\n  \"format\": \"radmm-model\",\n  \"version\": 1,,\n}");
  CHECK(model_error_of(out.string()) == mj.string() + ":3:16: expected a string key, found ','");

  write_text(mj, good.substr(0, good.size() / 2));
  CHECK(model_error_of(out.string()).rfind(mj.string() + ":", 0) == 0);

  std::string wrong = good;
  wrong.replace(wrong.find("radmm-model"), 11, "other-model");
  write_text(mj, wrong);
  CHECK(model_error_of(out.string()) ==
        mj.string() + ": format: 'other-model' is not a radmm model (expected 'radmm-model')");

  wrong = good;
  wrong.replace(wrong.find("\"layers\": 3"), 11, "\"layers\": 4");
  write_text(mj, wrong);
  CHECK(model_error_of(out.string()) ==
        (out / "W_3.npy").string() +
            ": shape 1x4, expected 4x4 for layer 3 (rows = outputs; layers 4, input 3, width 4, output 1)");

  wrong = good;
  wrong.replace(wrong.find("\"bias\": true"), 12, "\"bias\": 1");
  write_text(mj, wrong);
  CHECK(model_error_of(out.string()) == mj.string() + ": bias: expected a boolean, found a number");

  wrong = good;
  wrong.replace(wrong.find("\"width\": 4"), 10, "\"width\": 5");
  write_text(mj, wrong);
  CHECK(model_error_of(out.string()) ==
        (out / "W_1.npy").string() +
            ": shape 4x3, expected 5x3 for layer 1 (rows = outputs; layers 3, input 3, width 5, output 1)");
}

TEST_CASE("init weights with the wrong shape name the file and both shapes") {
  temp_dir d;
  radmm::core::architecture arch;
  arch.layers = 2;
  arch.input_dim = 3;
  arch.width = 3;
  arch.output_dim = 2;
  radmm::core::write_npy((d.path / "W_1.npy").string(), mat::Ones(3, 3));
  radmm::core::write_npy((d.path / "W_2.npy").string(), mat::Ones(3, 2));
  CHECK_THROWS_WITH_AS(
      radmm::coordinator::read_weights_dir(d.path.string(), arch),
      ((d.path / "W_2.npy").string() +
       ": shape 3x2, expected 2x3 for layer 2 (rows = outputs; layers 2, input 3, width 3, output 2)")
          .c_str(),
      model_error);
  radmm::core::write_npy((d.path / "W_2.npy").string(), mat::Ones(2, 3));
  const auto W = radmm::coordinator::read_weights_dir(d.path.string(), arch);
  CHECK(W.size() == 3);
  CHECK(W[2].rows() == 2);
  mat nan_w = mat::Ones(2, 3);
  nan_w(1, 1) = std::nan("");
  radmm::core::write_npy((d.path / "W_2.npy").string(), nan_w);
  CHECK_THROWS_WITH_AS(radmm::coordinator::read_weights_dir(d.path.string(), arch),
                       ((d.path / "W_2.npy").string() + ": contains NaN or infinite values").c_str(),
                       model_error);
}

TEST_CASE("init weights load from the reference runs' W0 folders") {
  const fs::path w0 = fs::path(RADMM_SHARED_DIR) / "reference" / "2s_relu_N3" / "W0";
  if (!fs::exists(w0 / "W1.npy")) {
    MESSAGE("skipped: " << w0.string() << " is absent");
    return;
  }
  const mat X = radmm::core::read_npy((w0.parent_path() / "X.npy").string());
  const mat W3 = radmm::core::read_npy((w0 / "W3.npy").string());
  radmm::core::architecture arch;
  arch.layers = 3;
  arch.input_dim = static_cast<int>(X.rows());
  arch.width = static_cast<int>(radmm::core::read_npy((w0 / "W1.npy").string()).rows());
  arch.output_dim = static_cast<int>(W3.rows());
  const auto W = radmm::coordinator::read_weights_dir(w0.string(), arch);
  CHECK(W[3] == W3);
}

TEST_CASE("JSON writes full-precision numbers, escapes strings and writes NaN as null") {
  json::value v;
  v.set("third", 1.0 / 3.0);
  v.set("tenth", 0.1);
  v.set("big", 1e300);
  v.set("nan", std::nan(""));
  v.set("inf", std::numeric_limits<double>::infinity());
  v.set("text", "a\"b\\c\n\t\x01 é");
  v.set("list", json::array_t{1, 2.5, true, nullptr});
  v.set("empty", json::object_t{});
  const std::string s = json::dump(v, -1);
  CHECK(s ==
        "{\"third\":0.3333333333333333,\"tenth\":0.1,\"big\":1e+300,\"nan\":null,\"inf\":null,"
        "\"text\":\"a\\\"b\\\\c\\n\\t\\u0001 é\",\"list\":[1,2.5,true,null],\"empty\":{}}");
  const json::value back = json::parse(json::dump(v));
  CHECK(back.at("third").as_number() == 1.0 / 3.0);
  CHECK(back.at("text").as_string() == "a\"b\\c\n\t\x01 é");
  CHECK(back.at("nan").is_null());
  CHECK(back.at("list").as_array().size() == 4);
}

TEST_CASE("JSON parsing is strict and names line and column") {
  auto err = [](const std::string& text) {
    try {
      json::parse(text, "f.json");
    } catch (const json::json_error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(err("[1, 2,]") == "f.json:1:7: unexpected ']', expected a value");
  CHECK(err("{\"a\": 1 \"b\": 2}") == "f.json:1:9: expected ',' or '}' in an object, found '\"'");
  CHECK(err("{\"a\": 1, \"a\": 2}") == "f.json:1:10: duplicate key \"a\"");
  CHECK(err("\n  01") == "f.json:2:3: invalid number: leading zeros are not allowed");
  CHECK(err("NaN") == "f.json:1:1: unexpected 'N', expected a value");
  CHECK(err("1e999") == "f.json:1:1: number 1e999 is out of the range of a double");
  CHECK(err("\"abc") == "f.json:1:1: unterminated string");
  CHECK(err("\"a\\x\"") == "f.json:1:3: invalid escape '\\x' in a string");
  CHECK(err("\"\\ud800\"") == "f.json:1:8: unpaired UTF-16 surrogate in a \\u escape");
  CHECK(err("{} x") == "f.json:1:4: unexpected text after the JSON value");
  CHECK(err("") == "f.json:1:1: unexpected end of input, expected a value");
  CHECK(err("// c\n1") == "f.json:1:1: unexpected '/', expected a value");
  CHECK(err(std::string(1000, '[')) == "f.json:1:258: nesting deeper than 256 levels");
  CHECK(json::parse("\"\\u00e9\\ud83d\\ude00\"").as_string() == "é\xF0\x9F\x98\x80");
  CHECK(json::parse(" {\"x\": [-0.5e-3, 0, {}]} ").at("x").as_array()[0].as_number() == -0.5e-3);
}
