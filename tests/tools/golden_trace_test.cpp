// The golden traces under tests/data/traces (tools/regen_golden_traces.sh
// writes them, on purpose only): they must still read, satisfy every protocol
// invariant, and replay bit for bit. A change to what the layer machines send
// (an update formula, the protocol) fails here until the traces are
// regenerated and reviewed.
#include "tests/tools/trace_test_util.hpp"
#include "tools/trace_check.hpp"
#include "tools/trace_replay.hpp"

#include <doctest/doctest.h>

#include <Eigen/Core>

using namespace radmm;

namespace {
const char* const golden[] = {"small_2s_full_batch.rtrace", "small_3s_mini_batch.rtrace"};
std::string golden_path(const char* name) { return std::string(RADMM_TEST_DATA_DIR "/traces/") + name; }
}  // namespace

TEST_CASE("golden traces read completely and satisfy every protocol invariant") {
  for (const char* name : golden) {
    CAPTURE(name);
    const tools::run_model r = test::load(golden_path(name));
    CHECK_FALSE(r.data.truncated);
    CHECK(r.layers == 3);
    CHECK(r.payloads);
    const auto v = tools::check_trace(r);
    if (!v.empty()) CAPTURE(v.front().what);
    CHECK(v.empty());
  }
}

TEST_CASE("golden traces replay bit for bit, layer by layer and as a whole run") {
  Eigen::setNbThreads(1);
  for (const char* name : golden) {
    CAPTURE(name);
    const tools::run_model r = test::load(golden_path(name));
    for (int layer = 1; layer <= r.layers; ++layer) {
      CAPTURE(layer);
      const auto res = tools::replay_layer(r, layer);
      CAPTURE(res.report);
      CHECK(res.identical);
    }
    const auto whole = tools::replay_run(r);
    CAPTURE(whole.report);
    CHECK(whole.identical);
  }
}
