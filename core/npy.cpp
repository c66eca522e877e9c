#include "core/npy.hpp"

#include "core/data.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

namespace radmm::core {
namespace {

constexpr char npy_magic[] = "\x93NUMPY";
constexpr std::size_t npy_magic_len = 6;

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw data_error(name + ": " + what);
}

// Byte order is spelled out with shifts so the format does not depend on the
// host's endianness.
void put_le(std::string& out, std::uint64_t bits, int nbytes) {
  for (int b = 0; b < nbytes; ++b) out.push_back(static_cast<char>((bits >> (8 * b)) & 0xffu));
}

std::uint64_t get_le(const unsigned char* p, int nbytes) {
  std::uint64_t v = 0;
  for (int b = nbytes - 1; b >= 0; --b) v = (v << 8) | p[b];
  return v;
}

// The header is a Python dict literal. NumPy writes it in one fixed form, but
// other writers (and older NumPy) vary spacing, key order and trailing commas,
// so this is a small tokenizer for the subset the format uses rather than a
// match against one string.
struct header_fields {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
  bool has_descr = false, has_order = false, has_shape = false;
};

class header_parser {
 public:
  header_parser(const std::string& text, const std::string& name) : s_(text), name_(name) {}

  header_fields parse() {
    header_fields h;
    skip_ws();
    expect('{');
    skip_ws();
    while (!at('}')) {
      const std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        h.descr = parse_string();
        h.has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = parse_bool();
        h.has_order = true;
      } else if (key == "shape") {
        h.shape = parse_shape();
        h.has_shape = true;
      } else {
        bad("unexpected key '" + key + "' in the header");
      }
      skip_ws();
      if (at(',')) {
        ++pos_;
        skip_ws();
      } else if (!at('}')) {
        bad("expected ',' or '}' in the header dict");
      }
    }
    ++pos_;
    skip_ws();
    if (pos_ != s_.size()) bad("unexpected text after the header dict");
    if (!h.has_descr) bad("header has no 'descr'");
    if (!h.has_order) bad("header has no 'fortran_order'");
    if (!h.has_shape) bad("header has no 'shape'");
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& what) {
    // The header may be garbage of any length; quote only its start.
    std::string shown = s_.substr(0, 120);
    for (char& c : shown)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    fail(name_, "malformed .npy header (" + what + "): " + shown + (s_.size() > 120 ? "..." : ""));
  }
  bool at(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t')) ++pos_;
  }
  void expect(char c) {
    if (!at(c)) bad(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    if (!at('\'') && !at('"')) bad("expected a quoted string");
    const char q = s_[pos_++];
    const std::size_t end = s_.find(q, pos_);
    if (end == std::string::npos) bad("unterminated string");
    std::string v = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return v;
  }
  bool parse_bool() {
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    bad("fortran_order is neither True nor False");
  }
  std::vector<std::int64_t> parse_shape() {
    expect('(');
    std::vector<std::int64_t> dims;
    skip_ws();
    while (!at(')')) {
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') bad("shape entries must be integers");
      std::int64_t v = 0;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        if (v > (std::numeric_limits<std::int64_t>::max() - 9) / 10) bad("shape entry too large");
        v = v * 10 + (s_[pos_++] - '0');
      }
      // Python 2 era writers append L to long integers.
      if (at('L')) ++pos_;
      dims.push_back(v);
      skip_ws();
      if (at(',')) {
        ++pos_;
        skip_ws();
      } else if (!at(')')) {
        bad("expected ',' or ')' in the shape");
      }
    }
    ++pos_;
    return dims;
  }

  const std::string& s_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

std::string errno_text() { return std::strerror(errno); }

}  // namespace

std::string encode_npy(const_mat_ref m) {
  std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + std::to_string(m.rows()) + ", " +
                     std::to_string(m.cols()) + "), }";
  // Version 1.0: magic (6) + version (2) + header length (2), then the dict padded
  // with spaces and ended by '\n' so the data starts on a 64-byte boundary.
  const std::size_t prefix = npy_magic_len + 2 + 2;
  std::size_t total = prefix + dict.size() + 1;
  const std::size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict.push_back('\n');
  if (dict.size() > 0xffff) throw data_error("encode_npy: header too long for format 1.0");

  std::string out;
  out.reserve(padded + static_cast<std::size_t>(m.size()) * 8);
  out.append(npy_magic, npy_magic_len);
  out.push_back('\x01');
  out.push_back('\x00');
  put_le(out, dict.size(), 2);
  out += dict;
  // fortran_order False means row-major, while Eigen stores columns: walk rows.
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) {
      std::uint64_t bits;
      const double v = m(i, j);
      std::memcpy(&bits, &v, sizeof bits);
      put_le(out, bits, 8);
    }
  return out;
}

mat decode_npy(const std::string& bytes, const std::string& name) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < npy_magic_len + 2 || bytes.compare(0, npy_magic_len, npy_magic) != 0)
    fail(name, "not a .npy file (missing the \\x93NUMPY magic)");
  const int major = p[6];
  std::size_t len_bytes;
  if (major == 1) {
    len_bytes = 2;
  } else if (major == 2 || major == 3) {
    len_bytes = 4;
  } else {
    fail(name, "unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(static_cast<int>(p[7])) + " (1.0, 2.0 and 3.0 are supported)");
  }
  const std::size_t header_start = npy_magic_len + 2 + len_bytes;
  if (bytes.size() < header_start) fail(name, "truncated .npy header");
  const std::size_t header_len = get_le(p + npy_magic_len + 2, static_cast<int>(len_bytes));
  if (bytes.size() - header_start < header_len)
    fail(name, "truncated .npy header: it declares " + std::to_string(header_len) + " bytes, the file has " +
                   std::to_string(bytes.size() - header_start));
  const std::string header = bytes.substr(header_start, header_len);
  const header_fields h = header_parser(header, name).parse();

  int item = 0;
  if (h.descr == "<f8")
    item = 8;
  else if (h.descr == "<f4")
    item = 4;
  else if (h.descr == "<i8")
    item = 8;
  else if (h.descr == "<i4")
    item = 4;
  else
    fail(name, "unsupported dtype '" + h.descr + "' (supported: <f8, <f4, <i8, <i4)");

  Eigen::Index rows = 0, cols = 0;
  if (h.shape.size() == 1) {
    rows = h.shape[0];
    cols = 1;
  } else if (h.shape.size() == 2) {
    rows = h.shape[0];
    cols = h.shape[1];
  } else {
    fail(name, "array has " + std::to_string(h.shape.size()) + " dimensions; only 1-D and 2-D are supported");
  }
  const std::size_t avail = bytes.size() - header_start - header_len;
  if (cols != 0 && static_cast<std::uint64_t>(rows) >
                       avail / static_cast<std::uint64_t>(item) / static_cast<std::uint64_t>(cols))
    fail(name, "truncated data: shape (" + std::to_string(rows) + ", " + std::to_string(cols) + ") of " +
                   h.descr + " needs more than the " + std::to_string(avail) + " bytes present");
  const std::size_t need =
      static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * static_cast<std::size_t>(item);
  if (avail != need)
    fail(name, (avail < need ? "truncated data: " : "unexpected trailing bytes: ") +
                   std::string("expected ") + std::to_string(need) + " data bytes, found " +
                   std::to_string(avail));

  mat m(rows, cols);
  const unsigned char* d = p + header_start + header_len;
  for (Eigen::Index k = 0; k < rows * cols; ++k) {
    const std::uint64_t bits = get_le(d + static_cast<std::size_t>(k) * static_cast<std::size_t>(item), item);
    double v;
    if (h.descr == "<f8") {
      std::memcpy(&v, &bits, 8);
    } else if (h.descr == "<f4") {
      const auto b32 = static_cast<std::uint32_t>(bits);
      float f;
      std::memcpy(&f, &b32, 4);
      v = f;
    } else if (h.descr == "<i8") {
      std::int64_t i;
      std::memcpy(&i, &bits, 8);
      v = static_cast<double>(i);
    } else {
      const auto b32 = static_cast<std::uint32_t>(bits);
      std::int32_t i;
      std::memcpy(&i, &b32, 4);
      v = i;
    }
    // Element k is at (k / cols, k % cols) in C order, (k % rows, k / rows) in Fortran order.
    if (h.fortran_order)
      m(k % rows, k / rows) = v;
    else
      m(k / cols, k % cols) = v;
  }
  return m;
}

void write_npy(const std::string& path, const_mat_ref m) { write_file_atomic(path, encode_npy(m)); }

mat read_npy(const std::string& path) { return decode_npy(read_file(path), path); }

std::string read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) fail(path, "is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open: " + errno_text());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, "read error: " + errno_text());
  return ss.str();
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  // mkstemp picks a name no other writer uses; same directory so rename is atomic.
  std::string tmpl = path + ".tmp-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0) fail(path, "cannot create a temporary file: " + errno_text());
  const std::string tmp(name.data());
  auto abandon = [&](const std::string& what) {
    const std::string msg = what + ": " + errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, msg);
  };
  // mkstemp creates 0600; give the file the usual permissions under the umask.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  if (::fchmod(fd, 0666 & ~mask) != 0) abandon("cannot set permissions");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      abandon("write failed");
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0) abandon("fsync failed");
  if (::close(fd) != 0) {
    const std::string msg = "close failed: " + errno_text();
    ::unlink(tmp.c_str());
    fail(path, msg);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string msg = "cannot rename the temporary file into place: " + errno_text();
    ::unlink(tmp.c_str());
    fail(path, msg);
  }
  // The rename is durable only once the directory entry is synced.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace radmm::core
