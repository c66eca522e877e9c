// .npy encoding and decoding: byte-level format of what we write, every dtype and
// order we read, and the error for each kind of damaged file.
#include "core/npy.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace fs = std::filesystem;
using radmm::core::data_error;
using radmm::core::mat;

namespace {

// Builds a .npy file by hand, as another writer (NumPy itself) would.
std::string make_npy(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict;
  const std::size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  const std::size_t len = header.size();
  for (std::size_t b = 0; b < (major == 1 ? 2u : 4u); ++b)
    out.push_back(static_cast<char>((len >> (8 * b)) & 0xff));
  return out + header + data;
}

template <class T>
std::string raw(std::initializer_list<T> values) {
  std::string s;
  for (T v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);  // test host is little-endian
  return s;
}

std::string error_of(const std::string& bytes) {
  try {
    radmm::core::decode_npy(bytes, "bad.npy");
  } catch (const data_error& e) {
    return e.what();
  }
  return "";
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("radmm-npy-test-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("encode_npy writes a version 1.0 header padded to 64 bytes with row-major float64 data") {
  mat m(2, 3);
  m << 1, 2, 3, 4, 5, 6.5;
  const std::string b = radmm::core::encode_npy(m);
  CHECK(b.compare(0, 6, "\x93NUMPY") == 0);
  CHECK(b[6] == 1);
  CHECK(b[7] == 0);
  const auto hlen =
      static_cast<std::size_t>(static_cast<unsigned char>(b[8]) | (static_cast<unsigned char>(b[9]) << 8));
  CHECK((10 + hlen) % 64 == 0);
  const std::string header = b.substr(10, hlen);
  CHECK(header.rfind("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 0) == 0);
  CHECK(header.back() == '\n');
  REQUIRE(b.size() == 10 + hlen + 6 * 8);
  double first_row[3];
  std::memcpy(first_row, b.data() + 10 + hlen, sizeof first_row);
  CHECK(first_row[0] == 1);
  CHECK(first_row[1] == 2);
  CHECK(first_row[2] == 3);
}

TEST_CASE("write_npy and read_npy round trip matrices exactly, including empty and tall ones") {
  temp_dir dir;
  for (auto [r, c] : {std::pair{3, 4}, std::pair{1, 1}, std::pair{0, 5}, std::pair{70, 2}}) {
    mat m = mat::Random(r, c) * 1e3;
    if (m.size() > 0) m(0, 0) = 1.0 / 3.0;
    const std::string p = (dir.path / "m.npy").string();
    radmm::core::write_npy(p, m);
    const mat back = radmm::core::read_npy(p);
    CHECK(back.rows() == r);
    CHECK(back.cols() == c);
    CHECK(back == m);
  }
  // No temporary files remain next to the output.
  int files = 0;
  for (auto& e : fs::directory_iterator(dir.path)) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("decode_npy reads float32, int64, int32, Fortran order, 1-D arrays and format 2.0") {
  mat want(2, 2);
  want << 1, 2, 3, 4;
  CHECK(radmm::core::decode_npy(
            make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", raw<float>({1, 2, 3, 4})),
            "x") == want);
  CHECK(radmm::core::decode_npy(make_npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }",
                                         raw<std::int64_t>({1, 2, 3, 4})),
                                "x") == want);
  CHECK(radmm::core::decode_npy(make_npy("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 2), }",
                                         raw<std::int32_t>({1, 3, 2, 4})),
                                "x") == want);
  CHECK(radmm::core::decode_npy(make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
                                         raw<double>({1, 2, 3, 4}), 2),
                                "x") == want);
  // Key order and spacing vary between writers.
  CHECK(radmm::core::decode_npy(
            make_npy("{'shape':(2,2),'fortran_order':False,'descr':'<f8'}", raw<double>({1, 2, 3, 4}), 3),
            "x") == want);
  const mat v = radmm::core::decode_npy(
      make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", raw<double>({7, 8, 9})), "x");
  CHECK(v.rows() == 3);
  CHECK(v.cols() == 1);
  CHECK(v(2, 0) == 9);
}

TEST_CASE("decode_npy names the file and the problem for every malformed input") {
  const std::string ok_dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
  const std::string data = raw<double>({1, 2, 3, 4});
  CHECK(error_of("hello world") == "bad.npy: not a .npy file (missing the \\x93NUMPY magic)");
  CHECK(error_of("").find("bad.npy: not a .npy file") == 0);
  std::string v9 = make_npy(ok_dict, data);
  v9[6] = 9;
  CHECK(error_of(v9).find("unsupported .npy format version 9.0") != std::string::npos);
  CHECK(error_of(make_npy(ok_dict, data).substr(0, 40)).find("bad.npy: truncated .npy header") == 0);
  CHECK(error_of(make_npy("{'descr': '>f8', 'fortran_order': False, 'shape': (2, 2), }", data))
            .find("bad.npy: unsupported dtype '>f8'") == 0);
  CHECK(error_of(make_npy("{'descr': '<c16', 'fortran_order': False, 'shape': (2, 2), }", data))
            .find("unsupported dtype '<c16'") != std::string::npos);
  CHECK(error_of(make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", raw<double>({1})))
            .find("bad.npy: array has 0 dimensions") == 0);
  CHECK(error_of(make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2, 2), }", data))
            .find("bad.npy: array has 3 dimensions") == 0);
  CHECK(error_of(make_npy(ok_dict, data.substr(0, 20))).find("bad.npy: truncated data") == 0);
  CHECK(error_of(make_npy(ok_dict, data + "xx")).find("bad.npy: unexpected trailing bytes") == 0);
  CHECK(error_of(make_npy("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2, 2), }", data))
            .find("bad.npy: malformed .npy header (fortran_order is neither True nor False)") == 0);
  CHECK(
      error_of(make_npy("{'descr': '<f8', 'shape': (2, 2), }", data)).find("header has no 'fortran_order'") !=
      std::string::npos);
  CHECK(error_of(make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, x), }", data))
            .find("shape entries must be integers") != std::string::npos);
  CHECK(error_of(
            make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4000000000, 4000000000), }", data))
            .find("bad.npy: truncated data") == 0);
}

TEST_CASE("read_npy names a missing file and the system's reason") {
  try {
    radmm::core::read_npy("/nonexistent/dir/W_1.npy");
    FAIL("expected data_error");
  } catch (const data_error& e) {
    CHECK(std::string(e.what()) == "/nonexistent/dir/W_1.npy: cannot open: No such file or directory");
  }
}

TEST_CASE("read_npy loads the NumPy-written reference files") {
  const fs::path ref = fs::path(RADMM_SHARED_DIR) / "reference" / "2s_relu_N3";
  if (!fs::exists(ref / "X.npy")) {
    MESSAGE("skipped: " << ref.string() << " is absent");
    return;
  }
  const mat X = radmm::core::read_npy((ref / "X.npy").string());
  CHECK(X.rows() == 6);
  CHECK(X.cols() == 40);
  CHECK(X.allFinite());
  const mat W1 = radmm::core::read_npy((ref / "W0" / "W1.npy").string());
  CHECK(W1.rows() > 0);
  // Re-encoding reproduces NumPy's own bytes: same header layout, same data order.
  std::ifstream in(ref / "X.npy", std::ios::binary);
  const std::string original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(radmm::core::encode_npy(X) == original);
}
