#include "coordinator/fs_util.hpp"

#include "core/data.hpp"
#include "core/npy.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

namespace radmm::coordinator {
namespace fs = std::filesystem;

namespace {

// "out/" and "out" name the same directory; the temp and backup names hang off
// the name without the slash.
std::string strip_slashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

void fsync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0)
    throw output_error(p.string() +
                       ": cannot open to sync: " + std::error_code(errno, std::generic_category()).message());
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0)
    throw output_error(p.string() +
                       ": fsync failed: " + std::error_code(err, std::generic_category()).message());
}

fs::path parent_of(const fs::path& p) {
  const fs::path parent = p.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

void remove_quietly(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  try {
    core::write_file_atomic(path, bytes);
  } catch (const core::data_error& e) {
    throw output_error(e.what());
  }
}

void check_output_dir(const std::string& out_arg, bool force) {
  const fs::path out = strip_slashes(out_arg);
  if (out.empty()) throw output_error("the output directory name is empty");
  // Checked before any training: the directory is replaced by a rename, which
  // cannot apply to ".", ".." or "/".
  const std::string base = out.filename().string();
  if (base == "." || base == ".." || out == "/")
    throw output_error(out.string() + ": cannot be replaced as a whole; name a new directory");
  std::error_code ec;
  const auto st = fs::symlink_status(out, ec);
  if (ec || !fs::exists(st)) return;
  if (!fs::is_directory(fs::status(out, ec)))
    throw output_error(out.string() + ": exists and is not a directory; choose another --out");
  if (!force && !fs::is_empty(out, ec))
    throw output_error(out.string() + ": directory exists and is not empty; pass --force to replace it");
}

void publish_directory(const std::string& out_arg, bool force,
                       const std::function<void(const std::string& tmp_dir)>& fill) {
  const fs::path out = strip_slashes(out_arg);
  if (out.empty()) throw output_error("the output directory name is empty");
  // The directory is replaced by a rename, which cannot apply to ".", ".." or "/".
  const std::string base = out.filename().string();
  if (base == "." || base == ".." || out == "/")
    throw output_error(out.string() + ": cannot be replaced as a whole; name a new directory");
  check_output_dir(out.string(), force);

  const fs::path parent = parent_of(out);
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw output_error(parent.string() + ": cannot create the parent directory: " + ec.message());

  const std::string pid = std::to_string(::getpid());
  const fs::path tmp = out.string() + ".tmp-" + pid;
  // A directory of this name can only be left by an earlier process with our
  // pid that died mid-write; its contents are worthless.
  remove_quietly(tmp);
  if (!fs::create_directory(tmp, ec) || ec)
    throw output_error(tmp.string() + ": cannot create the temporary output directory: " +
                       (ec ? ec.message() : std::string("already exists")));
  try {
    fill(tmp.string());
    for (const auto& e : fs::directory_iterator(tmp))
      if (e.is_regular_file()) fsync_path(e.path(), false);
    fsync_path(tmp, true);

    // Check again: another process may have created `out` while we were writing.
    check_output_dir(out.string(), force);
    fs::path old;
    if (fs::exists(fs::symlink_status(out, ec))) {
      // rename(2) cannot replace a non-empty directory, so move the old one aside
      // first and delete it only once the new one is in place.
      old = out.string() + ".old-" + pid;
      remove_quietly(old);
      fs::rename(out, old, ec);
      if (ec)
        throw output_error(out.string() + ": cannot move the existing directory aside: " + ec.message());
    }
    fs::rename(tmp, out, ec);
    if (ec) {
      const std::string why = ec.message();
      if (!old.empty()) {
        std::error_code ec2;
        fs::rename(old, out, ec2);
      }
      throw output_error(out.string() + ": cannot rename the finished output into place: " + why);
    }
    fsync_path(parent, true);
    if (!old.empty()) remove_quietly(old);
  } catch (...) {
    remove_quietly(tmp);
    throw;
  }
}

}  // namespace radmm::coordinator
