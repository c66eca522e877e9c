// libFuzzer harnesses for every reader of untrusted bytes (issue 6): the CSV
// reader, the .npy reader, the checkpoint block reader, the protocol header
// codec and the TCP frame decoder. One binary per reader, chosen at compile
// time by RADMM_FUZZ_TARGET. Anything but the reader's documented error type
// (a crash, a sanitizer report, another exception) is a finding.
#include "core/checkpoint.hpp"
#include "core/data.hpp"
#include "core/npy.hpp"
#include "protocol/codec.hpp"
#include "protocol/tcp_frame.hpp"
#include "protocol/transport.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
#if RADMM_FUZZ_TARGET == 1
  try {
    (void)radmm::core::parse_csv(bytes, "fuzz.csv");
  } catch (const radmm::core::data_error&) {
  }
#elif RADMM_FUZZ_TARGET == 2
  try {
    (void)radmm::core::decode_npy(bytes, "fuzz.npy");
  } catch (const radmm::core::data_error&) {
  }
#elif RADMM_FUZZ_TARGET == 3
  try {
    (void)radmm::core::decode_block(bytes, "fuzz.bin");
  } catch (const radmm::core::data_error&) {
  }
#elif RADMM_FUZZ_TARGET == 4
  try {
    (void)radmm::protocol::decode_header(data, size);
  } catch (const radmm::protocol::protocol_error&) {
  }
  try {
    (void)radmm::protocol::decode_frame(data, size, std::uint64_t{1} << 24);
  } catch (const radmm::protocol::protocol_error&) {
  }
#else
#error "RADMM_FUZZ_TARGET must be 1 (csv), 2 (npy), 3 (block) or 4 (frame)"
#endif
  return 0;
}
