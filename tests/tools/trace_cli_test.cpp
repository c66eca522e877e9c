// radmm-trace as a program: documented exit codes, clear errors on bad input,
// and the outputs it promises (JSON lines, files written).
#include "tests/tools/trace_test_util.hpp"
#include "coordinator/json.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <sstream>
#include <sys/wait.h>

using namespace radmm;

namespace {

struct outcome {
  int code = -1;
  std::string out;  // stdout and stderr together
};

outcome run_tool(const std::string& args) {
  const std::string cmd = std::string(RADMM_BINARY_DIR "/bin/radmm-trace ") + args + " 2>&1";
  outcome o;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) o.out.append(buf, n);
  const int status = pclose(p);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return o;
}

const std::string golden = RADMM_TEST_DATA_DIR "/traces/small_2s_full_batch.rtrace";

}  // namespace

TEST_CASE("help documents every exit code") {
  const outcome o = run_tool("--help");
  CHECK(o.code == 0);
  for (const char* words : {"exit codes", "0  success", "1  check found", "2  bad command line", "3  unreadable trace",
                            "4  the trace lacks", "5  an output"})
    CHECK(o.out.find(words) != std::string::npos);
  CHECK(run_tool("").code == 2);
  CHECK(run_tool("frobnicate x").code == 2);
  CHECK(run_tool("check").code == 2);
  CHECK(run_tool("simulate " + golden + " --latency fast").code == 2);
}

TEST_CASE("check and replay of a golden trace exit 0") {
  const outcome c = run_tool("check " + golden);
  CAPTURE(c.out);
  CHECK(c.code == 0);
  CHECK(c.out.find("ok:") != std::string::npos);
  const outcome r = run_tool("replay " + golden + " --layer 2");
  CAPTURE(r.out);
  CHECK(r.code == 0);
  CHECK(run_tool("replay " + golden).code == 0);
  CHECK(run_tool("replay " + golden + " --layer 9").code == 2);
}

TEST_CASE("damaged and foreign files exit 3 with a clear message, never a crash") {
  test::temp_dir dir;
  auto bytes = test::read_bytes(golden);
  const std::string cut = dir.file("cut.rtrace"), bad = dir.file("bad.rtrace"), text = dir.file("notes.txt");
  test::write_bytes(cut, std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 10));
  bytes[bytes.size() / 3] ^= 0x40;
  test::write_bytes(bad, bytes);
  test::write_bytes(text, {'h', 'e', 'l', 'l', 'o', '\n'});
  for (const std::string cmd : {"info", "dump", "check", "replay", "stats", "simulate"}) {
    CAPTURE(cmd);
    const outcome a = run_tool(cmd + " " + bad);
    CAPTURE(a.out);
    CHECK(a.code == 3);
    CHECK(a.out.find("corrupt trace") != std::string::npos);
    const outcome b = run_tool(cmd + " " + text);
    CHECK(b.code == 3);
    CHECK(b.out.find("not a radmm trace") != std::string::npos);
    CHECK(run_tool(cmd + " " + cut).code == 3);
    CHECK(run_tool(cmd + " " + dir.file("absent.rtrace")).code == 3);
  }
}

TEST_CASE("a trace cut mid-record is read up to the cut, with a warning, and check fails") {
  test::temp_dir dir;
  const auto bytes = test::read_bytes(golden);
  const std::string cut = dir.file("cut.rtrace");
  test::write_bytes(cut, std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() * 2 / 3)));
  const outcome i = run_tool("info " + cut);
  CAPTURE(i.out);
  CHECK(i.code == 0);
  CHECK(i.out.find("truncated") != std::string::npos);
  const outcome c = run_tool("check " + cut);
  CAPTURE(c.out);
  CHECK(c.code == 1);
  CHECK(c.out.find("violation at seq") != std::string::npos);
}

TEST_CASE("replay of a trace without payloads exits 4") {
  test::temp_dir dir;
  const std::string path = dir.file("np.rtrace");
  test::record(test::small_run(), path, false);
  const outcome o = run_tool("replay " + path + " --layer 1");
  CAPTURE(o.out);
  CHECK(o.code == 4);
  CHECK(o.out.find("--trace-payloads") != std::string::npos);
}

TEST_CASE("dump writes one JSON object per record and export writes both formats") {
  test::temp_dir dir;
  const outcome d = run_tool("dump " + golden);
  REQUIRE(d.code == 0);
  std::istringstream lines(d.out);
  std::size_t n = 0, sends = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    const auto v = coordinator::json::parse(line, "dump line " + std::to_string(n + 1));
    sends += v.at("record").as_string() == "send";
  }
  CHECK(n > 50);
  CHECK(sends == 53);
  const std::string json = dir.file("t.json"), svg = dir.file("t.svg");
  const outcome e = run_tool("export " + golden + " --chrome " + json + " --svg " + svg);
  CAPTURE(e.out);
  CHECK(e.code == 0);
  CHECK(test::read_bytes(json).size() > 1000);
  CHECK(test::read_bytes(svg).size() > 1000);
  CHECK(run_tool("export " + golden + " --svg " + dir.file("no/such/dir.svg")).code == 5);
  const outcome s = run_tool("stats " + golden);
  CHECK(s.code == 0);
  CHECK(s.out.find("critical path") != std::string::npos);
  const outcome m = run_tool("simulate " + golden + " --workers 2 --latency 50us --bandwidth 10Gbit/s");
  CAPTURE(m.out);
  CHECK(m.code == 0);
  CHECK(m.out.find("predicted wall time") != std::string::npos);
}
