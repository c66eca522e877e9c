#pragma once
// Shared vocabulary of radmm::core. Samples are columns (the paper's convention):
// a d x n matrix holds n samples of width d.
#include <Eigen/Core>

#include <cstdint>

namespace radmm::core {

using mat = Eigen::MatrixXd;
using vec = Eigen::VectorXd;
using mat_ref = Eigen::Ref<mat>;
using const_mat_ref = const Eigen::Ref<const mat>&;

}  // namespace radmm::core
