#pragma once
// NumPy .npy files (format version 1.0/2.0/3.0 on read, 1.0 on write), float64
// little-endian, C or Fortran order. Loadable with numpy.load. Errors throw
// radmm::core::data_error naming the file and what is wrong.
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

}  // namespace radmm::core
