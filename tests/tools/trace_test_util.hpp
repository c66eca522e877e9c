#pragma once
// Helpers shared by the trace tests: a temporary directory that removes itself,
// small recorded in-process runs, and byte-level file access.
#include "protocol/trace.hpp"
#include "tools/trace_model.hpp"
#include "tools/trace_record.hpp"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace radmm::test {

class temp_dir {
 public:
  temp_dir() {
    char tmpl[] = "/tmp/radmm-trace-test-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    const std::string cmd = "rm -rf '" + path_ + "'";
    if (std::system(cmd.c_str()) != 0) {
      // Leaves the directory; nothing more a destructor can do.
    }
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// A small run: 3 layers, a few STEPs, tiny matrices.
inline tools::demo_options small_run(const std::string& algorithm = "2s", std::int64_t batch = 0) {
  tools::demo_options o;
  o.layers = 3;
  o.features = 4;
  o.width = 6;
  o.outputs = 2;
  o.samples = 23;
  o.test_samples = 7;
  o.algorithm = algorithm;
  o.iterations = 6;
  o.sync_every = 3;
  o.metrics_every = 2;
  o.batch_size = batch;
  o.updates_per_batch = 2;
  o.seed = 5;
  return o;
}

inline coordinator::run_result record(const tools::demo_options& o, const std::string& path, bool payloads,
                                      bool per_node = false) {
  tools::recording rec;
  rec.path = path;
  rec.payloads = payloads;
  rec.per_node_streams = per_node;
  rec.description = "test run";
  return tools::train_inproc_recorded(tools::make_demo_problem(o), tools::make_demo_schedule(o), rec);
}

inline tools::run_model load(const std::string& path) { return tools::build_model(protocol::read_trace_file(path)); }

}  // namespace radmm::test
