#pragma once
// NumPy .npy files (format version 1.0/2.0/3.0 on read, 1.0 on write), float64
// little-endian, C or Fortran order. Loadable with numpy.load. Errors throw
// radmm::core::data_error naming the file and what is wrong.
#include "core/data.hpp"  // data_error
#include "core/types.hpp"

#include <string>

namespace radmm::core {

// Writes atomically: a temporary file in the same directory, fsync, rename.
void write_npy(const std::string& path, const_mat_ref m);
// 1-D arrays load as a column vector; accepts '<f8' (and '<f4', '<i8', '<i4', converted).
mat read_npy(const std::string& path);

// The exact bytes write_npy would produce (header + data), for tests and traces.
std::string encode_npy(const_mat_ref m);
mat decode_npy(const std::string& bytes, const std::string& name_for_errors);

// Replaces `path` with `bytes` so that a reader sees the old file or the whole new
// one, never a part: a temporary file in the same directory, fsync, rename, then
// fsync of the directory. Throws data_error naming the path and strerror.
void write_file_atomic(const std::string& path, const std::string& bytes);
// Reads a whole file; throws data_error naming the path and strerror.
std::string read_file(const std::string& path);

}  // namespace radmm::core
