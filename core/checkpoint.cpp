#include "core/checkpoint.hpp"

#include "core/data.hpp"

#include <cstring>

namespace radmm::core {
namespace {

constexpr char magic[8] = {'R', 'A', 'D', 'M', 'M', 'B', 'L', 'K'};

template <class T>
void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

void put_mat(std::string& out, const mat& m) {
  put<std::int64_t>(out, m.rows());
  put<std::int64_t>(out, m.cols());
  out.append(reinterpret_cast<const char*>(m.data()), static_cast<std::size_t>(m.size()) * sizeof(double));
}

class reader {
 public:
  reader(const std::string& bytes, std::size_t end, const std::string& name) : b_(bytes), end_(end), name_(name) {}
  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  mat get_mat(const char* what) {
    const auto rows = get<std::int64_t>(what);
    const auto cols = get<std::int64_t>(what);
    if (rows < 0 || cols < 0 || rows > (1 << 30) || cols > (1 << 30) ||
        static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols) > (end_ - pos_) / sizeof(double))
      throw data_error(name_ + ": " + what + " has an impossible shape " + std::to_string(rows) + "x" +
                       std::to_string(cols));
    mat m(rows, cols);
    const std::size_t n = static_cast<std::size_t>(m.size()) * sizeof(double);
    need(n, what);
    if (n) std::memcpy(m.data(), b_.data() + pos_, n);
    pos_ += n;
    return m;
  }
  std::size_t pos() const { return pos_; }

 private:
  void need(std::size_t n, const char* what) {
    if (end_ - pos_ < n) throw data_error(name_ + ": truncated in " + what);
  }
  const std::string& b_;
  std::size_t end_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

}  // namespace

std::uint64_t fnv1a64(const std::string& bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string encode_block(const block_state& b) {
  std::string out(magic, sizeof magic);
  put<std::uint32_t>(out, block_format_version);
  put<std::int32_t>(out, b.layer);
  put<std::int64_t>(out, b.iteration);
  put<double>(out, b.tau);
  put<double>(out, b.nu);
  for (const mat* m : {&b.W, &b.V, &b.U, &b.Lambda, &b.pre, &b.V_prev}) put_mat(out, *m);
  put<std::uint64_t>(out, fnv1a64(out));
  return out;
}

block_state decode_block(const std::string& bytes, const std::string& name) {
  if (bytes.size() < sizeof magic + 8 || std::memcmp(bytes.data(), magic, sizeof magic) != 0)
    throw data_error(name + ": not a radmm checkpoint block");
  const std::size_t end = bytes.size() - sizeof(std::uint64_t);
  std::uint64_t stored;
  std::memcpy(&stored, bytes.data() + end, sizeof stored);
  if (stored != fnv1a64(bytes.substr(0, end)))
    throw data_error(name + ": checksum mismatch (the file is damaged or incomplete)");
  reader r(bytes, end, name);
  for (std::size_t i = 0; i < sizeof magic; ++i) r.get<char>("magic");
  const auto version = r.get<std::uint32_t>("version");
  if (version != block_format_version)
    throw data_error(name + ": checkpoint block version " + std::to_string(version) + ", this radmm reads " +
                     std::to_string(block_format_version));
  block_state b;
  b.layer = r.get<std::int32_t>("layer");
  b.iteration = static_cast<long>(r.get<std::int64_t>("iteration"));
  b.tau = r.get<double>("tau");
  b.nu = r.get<double>("nu");
  b.W = r.get_mat("W");
  b.V = r.get_mat("V");
  b.U = r.get_mat("U");
  b.Lambda = r.get_mat("Lambda");
  b.pre = r.get_mat("pre");
  b.V_prev = r.get_mat("V_prev");
  if (r.pos() != end) throw data_error(name + ": trailing bytes after the last matrix");
  return b;
}

}  // namespace radmm::core
