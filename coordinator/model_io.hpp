#pragma once
// A trained model on disk, one directory:
//   model.json   format "radmm-model" version 1: architecture, bias, feature and
//                target names, the min-max scalers (null when disabled), the
//                resolved config text and the final metrics
//   W_1.npy .. W_N.npy   float64, rows = outputs (the paper's W_i)
//   plus extra files the run adds (metrics.csv, config.txt, ...).
// The directory is published atomically (fs_util.hpp): a failed write leaves no
// partial directory. Reading validates everything against the architecture.
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/data.hpp"
#include "core/model.hpp"

namespace radmm::coordinator {

// A model directory that cannot be read or used: the message names the file.
struct model_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct model_files {
  core::architecture arch;
  core::weight_set W;  // index 1..N
  // x_scaler covers the raw features (feature_names), before the bias row is
  // appended; y_scaler covers the targets. Disabled scalers are written as null.
  core::minmax_scaler x_scaler, y_scaler;
  bool bias = false;  // arch.input_dim = feature_names.size() + (bias ? 1 : 0)
  std::vector<std::string> feature_names, target_names;
  std::string config_text;   // to_config_text of the run
  std::string metrics_json;  // final metrics object as JSON text ("" = null)
};

inline constexpr const char* model_format_name = "radmm-model";
inline constexpr int model_format_version = 1;

// Checks the invariants write_model_dir relies on (shapes, name and scaler
// sizes); throws model_error naming the field. `where` prefixes the message.
void validate_model(const model_files& m, const std::string& where);

// The text of model.json for `m` (validated first).
std::string model_json_text(const model_files& m);

// Writes model.json, W_i.npy and `extra_files` (name -> contents; plain names
// only, not model.json or W_i.npy) atomically as directory `out`. Refuses a
// non-empty existing `out` unless `force`. Throws model_error / output_error.
void write_model_dir(const std::string& out, const model_files& m,
                     const std::vector<std::pair<std::string, std::string>>& extra_files, bool force);

// Writes the same files into an existing directory (a run with checkpoints),
// each atomically, model.json last: a reader that finds model.json finds the rest.
void write_model_files(const std::string& dir, const model_files& m,
                       const std::vector<std::pair<std::string, std::string>>& extra_files);

// Reads and validates a model directory; throws model_error naming the file.
model_files read_model_dir(const std::string& dir);

// Reads W_1.npy .. W_N.npy (or W1.npy .. WN.npy, the reference runs' names) for
// --init-from and checks each shape against `arch`; throws model_error naming
// the file with the expected and actual shapes.
core::weight_set read_weights_dir(const std::string& dir, const core::architecture& arch);

}  // namespace radmm::coordinator
