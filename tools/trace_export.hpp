#pragma once
// `radmm-trace export`: the timeline of a traced run.
//  - Chrome's Trace Event Format (Perfetto, chrome://tracing): one track per
//    node, compute spans and receive waits as slices, every message as a flow
//    arrow from its send on the sender's track to its receipt on the
//    receiver's track.
//  - SVG: the same timeline as a picture for reports, one row per node,
//    compute blocks coloured, waits in grey, messages as lines, with a time
//    axis and a legend. Plain SVG text, no dependencies.
#include "tools/trace_model.hpp"

#include <cstdint>
#include <ostream>

namespace radmm::tools {

void write_chrome_trace(const run_model& r, std::ostream& os);

struct svg_options {
  // Window in aligned milliseconds; a negative end: the training window.
  double from_ms = -1, to_ms = -1;
  int width = 1400;
};
void write_svg(const run_model& r, std::ostream& os, const svg_options& opt = {});

}  // namespace radmm::tools
