#include "coordinator/model_io.hpp"

#include "coordinator/fs_util.hpp"
#include "coordinator/json.hpp"
#include "core/npy.hpp"

#include <filesystem>

namespace radmm::coordinator {
namespace fs = std::filesystem;

namespace {

std::string shape_text(Eigen::Index r, Eigen::Index c) { return std::to_string(r) + "x" + std::to_string(c); }

std::string weight_name(int i) { return "W_" + std::to_string(i) + ".npy"; }

json::value vec_json(const core::vec& v) {
  json::array_t a;
  a.reserve(static_cast<std::size_t>(v.size()));
  for (Eigen::Index k = 0; k < v.size(); ++k) a.emplace_back(v(k));
  return json::value(std::move(a));
}

json::value names_json(const std::vector<std::string>& names) {
  json::array_t a;
  for (const auto& n : names) a.emplace_back(n);
  return json::value(std::move(a));
}

json::value scaler_json(const core::minmax_scaler& s) {
  if (!s.enabled) return json::value();
  json::value o;
  o.set("lo", vec_json(s.lo));
  o.set("hi", vec_json(s.hi));
  return o;
}

// Reading: every accessor failure becomes "FILE: KEY: what".
struct reader {
  std::string file;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw model_error(file + ": " + key + ": " + what);
  }
  const json::value& get(const json::value& obj, const std::string& key) const {
    const json::value* v = obj.find(key);
    if (!v) fail(key, "missing");
    return *v;
  }
  int get_int(const json::value& obj, const std::string& key) const {
    try {
      return get(obj, key).as_int();
    } catch (const json::json_error& e) {
      fail(key, e.what());
    }
  }
  std::string get_string(const json::value& obj, const std::string& key) const {
    try {
      return get(obj, key).as_string();
    } catch (const json::json_error& e) {
      fail(key, e.what());
    }
  }
  bool get_bool(const json::value& obj, const std::string& key) const {
    try {
      return get(obj, key).as_bool();
    } catch (const json::json_error& e) {
      fail(key, e.what());
    }
  }
  std::vector<std::string> get_names(const json::value& obj, const std::string& key) const {
    try {
      std::vector<std::string> out;
      for (const auto& v : get(obj, key).as_array()) out.push_back(v.as_string());
      return out;
    } catch (const json::json_error& e) {
      fail(key, e.what());
    }
  }
  core::vec get_vec(const json::value& obj, const std::string& key, const std::string& what) const {
    try {
      const auto& a = get(obj, key).as_array();
      core::vec v(static_cast<Eigen::Index>(a.size()));
      for (std::size_t k = 0; k < a.size(); ++k) v(static_cast<Eigen::Index>(k)) = a[k].as_number();
      return v;
    } catch (const json::json_error& e) {
      fail(what + "." + key, e.what());
    }
  }
  core::minmax_scaler get_scaler(const json::value& obj, const std::string& key) const {
    const json::value& s = get(obj, key);
    if (s.is_null()) return {};
    if (!s.is_object()) fail(key, "expected an object {lo, hi} or null");
    core::minmax_scaler sc;
    sc.lo = get_vec(s, "lo", key);
    sc.hi = get_vec(s, "hi", key);
    sc.enabled = true;
    return sc;
  }
};

void check_scaler(const core::minmax_scaler& s, std::size_t n, const std::string& which,
                  const std::string& names, const std::string& where) {
  if (!s.enabled) return;
  if (s.lo.size() != static_cast<Eigen::Index>(n) || s.hi.size() != static_cast<Eigen::Index>(n))
    throw model_error(where + ": " + which + " has " + std::to_string(s.lo.size()) + " lo and " +
                      std::to_string(s.hi.size()) + " hi values, expected " + std::to_string(n) +
                      " (one per " + names + ")");
  if (!s.lo.allFinite() || !s.hi.allFinite() || (s.hi.array() < s.lo.array()).any())
    throw model_error(where + ": " + which + " needs finite values with lo <= hi");
}

}  // namespace

void validate_model(const model_files& m, const std::string& where) {
  try {
    m.arch.validate();
  } catch (const std::invalid_argument& e) {
    throw model_error(where + ": architecture: " + e.what());
  }
  const std::size_t d_raw = m.feature_names.size();
  if (static_cast<int>(d_raw) + (m.bias ? 1 : 0) != m.arch.input_dim)
    throw model_error(where + ": " + std::to_string(d_raw) + " feature names" +
                      (m.bias ? " plus the bias feature" : "") + " do not match the input width " +
                      std::to_string(m.arch.input_dim));
  if (static_cast<int>(m.target_names.size()) != m.arch.output_dim)
    throw model_error(where + ": " + std::to_string(m.target_names.size()) +
                      " target names do not match the output width " + std::to_string(m.arch.output_dim));
  check_scaler(m.x_scaler, d_raw, "x_scaler", "feature", where);
  check_scaler(m.y_scaler, m.target_names.size(), "y_scaler", "target", where);
  if (static_cast<int>(m.W.size()) != m.arch.layers + 1)
    throw model_error(where + ": expected " + std::to_string(m.arch.layers) + " weight matrices, got " +
                      std::to_string(static_cast<int>(m.W.size()) - 1));
  for (int i = 1; i <= m.arch.layers; ++i) {
    const auto& Wi = m.W[static_cast<std::size_t>(i)];
    if (Wi.rows() != m.arch.rows_of(i) || Wi.cols() != m.arch.cols_of(i))
      throw model_error(where + ": W_" + std::to_string(i) + " is " + shape_text(Wi.rows(), Wi.cols()) +
                        ", expected " + shape_text(m.arch.rows_of(i), m.arch.cols_of(i)));
  }
}

std::string model_json_text(const model_files& m) {
  validate_model(m, "model");
  json::value arch;
  arch.set("layers", m.arch.layers);
  arch.set("input_dim", m.arch.input_dim);
  arch.set("width", m.arch.width);
  arch.set("output_dim", m.arch.output_dim);
  arch.set("activation", core::to_string(m.arch.act));

  json::value metrics;
  if (!m.metrics_json.empty()) {
    try {
      metrics = json::parse(m.metrics_json, "final metrics");
    } catch (const json::json_error& e) {
      throw model_error(std::string("cannot embed the final metrics in model.json: ") + e.what());
    }
  }

  json::value root;
  root.set("format", model_format_name);
  root.set("version", model_format_version);
  root.set("architecture", std::move(arch));
  root.set("bias", m.bias);
  root.set("feature_names", names_json(m.feature_names));
  root.set("target_names", names_json(m.target_names));
  root.set("x_scaler", scaler_json(m.x_scaler));
  root.set("y_scaler", scaler_json(m.y_scaler));
  json::array_t weights;
  for (int i = 1; i <= m.arch.layers; ++i) weights.emplace_back(weight_name(i));
  root.set("weights", json::value(std::move(weights)));
  root.set("config", m.config_text);
  root.set("final_metrics", std::move(metrics));
  return json::dump(root) + "\n";
}

namespace {

void check_extra_names(const std::vector<std::pair<std::string, std::string>>& extra_files) {
  for (const auto& [name, contents] : extra_files) {
    (void)contents;
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == ".." ||
        name == "model.json" ||
        (name.size() > 6 && name.rfind("W_", 0) == 0 && name.compare(name.size() - 4, 4, ".npy") == 0))
      throw model_error("extra output file name '" + name +
                        "' is not allowed (plain names, not model.json or W_i.npy)");
  }
}

// Weights and extra files first, model.json last: model.json marks a whole model.
void write_model_contents(const fs::path& dir, const model_files& m, const std::string& model_json,
                          const std::vector<std::pair<std::string, std::string>>& extra_files) {
  for (int i = 1; i <= m.arch.layers; ++i) {
    try {
      core::write_npy((dir / weight_name(i)).string(), m.W[static_cast<std::size_t>(i)]);
    } catch (const core::data_error& e) {
      throw output_error(e.what());
    }
  }
  for (const auto& [name, contents] : extra_files) write_file_atomic((dir / name).string(), contents);
  write_file_atomic((dir / "model.json").string(), model_json);
}

}  // namespace

void write_model_dir(const std::string& out, const model_files& m,
                     const std::vector<std::pair<std::string, std::string>>& extra_files, bool force) {
  // Everything that can be checked is checked before anything touches the disk.
  const std::string model_json = model_json_text(m);
  check_extra_names(extra_files);
  publish_directory(out, force, [&](const std::string& tmp) { write_model_contents(tmp, m, model_json, extra_files); });
}

void write_model_files(const std::string& dir, const model_files& m,
                       const std::vector<std::pair<std::string, std::string>>& extra_files) {
  const std::string model_json = model_json_text(m);
  check_extra_names(extra_files);
  if (!fs::is_directory(dir)) throw output_error(dir + ": the run's directory is gone");
  write_model_contents(dir, m, model_json, extra_files);
}

core::weight_set read_weights_dir(const std::string& dir, const core::architecture& arch) {
  if (!fs::is_directory(dir))
    throw model_error(dir + ": not a directory (expected W_1.npy .. W_N.npy in it)");
  core::weight_set W(static_cast<std::size_t>(arch.layers) + 1);
  for (int i = 1; i <= arch.layers; ++i) {
    fs::path p = fs::path(dir) / weight_name(i);
    if (!fs::exists(p)) {
      const fs::path alt = fs::path(dir) / ("W" + std::to_string(i) + ".npy");
      if (!fs::exists(alt))
        throw model_error(p.string() + ": missing; a " + std::to_string(arch.layers) +
                          "-layer model needs W_1.npy .. W_" + std::to_string(arch.layers) + ".npy");
      p = alt;
    }
    core::mat Wi;
    try {
      Wi = core::read_npy(p.string());
    } catch (const core::data_error& e) {
      throw model_error(e.what());
    }
    if (Wi.rows() != arch.rows_of(i) || Wi.cols() != arch.cols_of(i))
      throw model_error(p.string() + ": shape " + shape_text(Wi.rows(), Wi.cols()) + ", expected " +
                        shape_text(arch.rows_of(i), arch.cols_of(i)) + " for layer " + std::to_string(i) +
                        " (rows = outputs; layers " + std::to_string(arch.layers) + ", input " +
                        std::to_string(arch.input_dim) + ", width " + std::to_string(arch.width) +
                        ", output " + std::to_string(arch.output_dim) + ")");
    if (!Wi.allFinite()) throw model_error(p.string() + ": contains NaN or infinite values");
    W[static_cast<std::size_t>(i)] = std::move(Wi);
  }
  return W;
}

model_files read_model_dir(const std::string& dir) {
  const std::string file = (fs::path(dir) / "model.json").string();
  if (!fs::is_directory(dir)) throw model_error(dir + ": not a model directory (it does not exist)");
  std::string text;
  try {
    text = core::read_file(file);
  } catch (const core::data_error& e) {
    throw model_error(e.what());
  }
  json::value root;
  try {
    root = json::parse(text, file);
  } catch (const json::json_error& e) {
    throw model_error(e.what());
  }
  const reader r{file};
  if (!root.is_object()) throw model_error(file + ": expected a JSON object at the top level");
  const std::string format = r.get_string(root, "format");
  if (format != model_format_name)
    r.fail("format", "'" + format + "' is not a radmm model (expected '" + model_format_name + "')");
  const int version = r.get_int(root, "version");
  if (version != model_format_version)
    r.fail("version", std::to_string(version) + " is not supported (this radmm reads version " +
                          std::to_string(model_format_version) + ")");

  model_files m;
  const json::value& arch = r.get(root, "architecture");
  if (!arch.is_object()) r.fail("architecture", "expected an object");
  m.arch.layers = r.get_int(arch, "layers");
  m.arch.input_dim = r.get_int(arch, "input_dim");
  m.arch.width = r.get_int(arch, "width");
  m.arch.output_dim = r.get_int(arch, "output_dim");
  try {
    m.arch.act = core::parse_activation(r.get_string(arch, "activation"));
  } catch (const std::invalid_argument& e) {
    r.fail("architecture.activation", e.what());
  }
  try {
    m.arch.validate();
  } catch (const std::invalid_argument& e) {
    r.fail("architecture", e.what());
  }
  m.bias = r.get_bool(root, "bias");
  m.feature_names = r.get_names(root, "feature_names");
  m.target_names = r.get_names(root, "target_names");
  m.x_scaler = r.get_scaler(root, "x_scaler");
  m.y_scaler = r.get_scaler(root, "y_scaler");
  if (!m.x_scaler.enabled)
    m.x_scaler = core::minmax_scaler::identity(static_cast<Eigen::Index>(m.feature_names.size()));
  if (!m.y_scaler.enabled)
    m.y_scaler = core::minmax_scaler::identity(static_cast<Eigen::Index>(m.target_names.size()));
  m.config_text = r.get_string(root, "config");
  const json::value* metrics = root.find("final_metrics");
  m.metrics_json = (metrics && !metrics->is_null()) ? json::dump(*metrics, -1) : "";

  m.W = read_weights_dir(dir, m.arch);
  validate_model(m, file);
  return m;
}

}  // namespace radmm::coordinator
