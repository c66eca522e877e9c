// libFuzzer harness for the trace reader (built with -DRADMM_FUZZ=ON under
// clang; ctest runs it for a bounded time). The first input byte decides
// whether checksums are verified: with them off, mutated record bodies reach
// the decoder. Anything but a clean trace_error is a finding.
#include "protocol/trace.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  radmm::protocol::trace_read_options opt;
  if (size > 0) {
    opt.verify_checksums = (data[0] & 1u) == 0;
  }
  // Try the input both as it is and without its first byte, so a corpus of
  // real traces (whose first byte is 'r', even) is fuzzed in both modes.
  for (std::size_t skip = 0; skip < 2 && skip <= size; ++skip) {
    try {
      const auto d = radmm::protocol::read_trace(size > skip ? data + skip : nullptr, size - skip, opt);
      (void)d;
    } catch (const radmm::protocol::trace_error&) {
    }
    opt.verify_checksums = !opt.verify_checksums;
  }
  return 0;
}
