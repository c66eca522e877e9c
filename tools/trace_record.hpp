#pragma once
// Recorded in-process runs: what `radmm-trace record` and `radmm-trace
// overhead` run, what the golden traces under tests/data/traces come from, and
// the shape of the in-process integration (coordinator/inproc_run.cpp): one
// trace_writer for the process, every endpoint wrapped in a
// recording_transport, every machine's span observer pointed at the writer.
#include "coordinator/training.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace radmm::tools {

// A self-contained problem on seeded random data (inputs uniform in [-1, 1],
// targets from a random teacher network), with the large proximal weights the
// worker tests use so every algorithm and depth stays finite.
struct demo_options {
  int layers = 5;
  int features = 8;
  int width = 0;  // 0: features
  int outputs = 2;
  int samples = 512;
  int test_samples = 0;
  std::string algorithm = "2s";
  std::string variant = "linearized";
  std::string activation = "relu";
  long iterations = 30;
  std::int64_t batch_size = 0;
  long updates_per_batch = 1;
  long sync_every = 10;
  long metrics_every = 1;
  std::uint64_t seed = 1;
};

coordinator::problem make_demo_problem(const demo_options& o);
coordinator::schedule make_demo_schedule(const demo_options& o);

struct recording {
  std::string path;  // empty: not recorded (the baseline of overhead measurements)
  bool payloads = false;
  // One stream per node, written to trace_part_path(path, node) and merged into
  // `path` at the end: what a multi-process run does, in one process.
  bool per_node_streams = false;
  std::string description;
};

// train_inproc with every endpoint and machine recorded.
coordinator::run_result train_inproc_recorded(const coordinator::problem& p, const coordinator::schedule& s,
                                              const recording& rec);

// Parses `record`/`overhead` flags into o; returns the arguments it did not use.
std::vector<std::string> parse_demo_flags(const std::vector<std::string>& args, demo_options& o);
std::string demo_flags_help();

}  // namespace radmm::tools
