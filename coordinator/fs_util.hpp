#pragma once
// File-system steps that must not leave partial outputs behind: a killed or
// failing run leaves either the previous state or the complete new one.
#include <functional>
#include <stdexcept>
#include <string>

namespace radmm::coordinator {

// An output location that cannot be written: the message names the path and why.
struct output_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Writes `bytes` to `path` through a temporary file in the same directory,
// fsync and rename (core::write_file_atomic); throws output_error.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Publishes the directory `out` as one step. `fill` receives a fresh temporary
// directory `<out>.tmp-<pid>` next to `out` and writes every file into it; then
// its files and the directory are fsynced and it is renamed to `out`.
//  - `out` existing as a non-empty directory is refused unless `force`; with
//    `force` the old directory is moved aside and removed only after the new one
//    is in place. A file (not a directory) at `out` is always refused.
//  - if `fill` or any later step throws, the temporary directory is removed and
//    the exception propagates, so nothing partial is left at `out`.
// Missing parent directories are created.
void publish_directory(const std::string& out, bool force,
                       const std::function<void(const std::string& tmp_dir)>& fill);

// Refuses early (before a long run) what publish_directory would refuse at the
// end: `out` is a file, or a non-empty directory without `force`.
void check_output_dir(const std::string& out, bool force);

}  // namespace radmm::coordinator
