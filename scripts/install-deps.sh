#!/usr/bin/env bash
# Installs the Debian 12 packages radmm builds and tests with. Distribution
# packages only, so every machine gets the same versions (Eigen 3.4, Boost 1.74,
# cereal 1.3.2, doctest 2.4.9).
set -euo pipefail

packages=(
  build-essential      # g++ 12 and make: the compiler and the default CMake generator
  cmake                # the build (3.20 or newer; Debian 12 ships 3.25)
  ccache               # picked up by CMakeLists.txt when present; speeds up rebuilds
  libeigen3-dev        # core/: all matrix algebra
  libboost-dev         # protocol/: Boost.Interprocess shared memory, Boost.Asio TCP
  libboost-system-dev  # Boost.System error codes used with Asio
  libcereal-dev        # protocol/: message serialisation (binary archives)
  libssl-dev           # protocol/tcp: HMAC-SHA256 of the TCP handshake (OpenSSL's libcrypto)
  doctest-dev          # tests/: every test suite
  gnuplot-nox          # tools/: plots of metrics.csv without an X server
  iproute2             # tests/: `ip netns` for the TCP tests across network namespaces
  python3              # scripts/: small helpers
  clang                # fuzzing builds (-fsanitize=fuzzer needs clang)
  libclang-rt-14-dev   # clang's sanitizer and libFuzzer runtimes
)

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
else
  sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
