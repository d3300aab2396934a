#!/usr/bin/env bash
# scripts/test.sh — set up (Debian packages + Python reference stack), build,
# and run the whole test suite with CTest (the README's second command).
#   scripts/test.sh            Release build in build/
#   scripts/test.sh --asan     AddressSanitizer + UBSan build in build-asan/
#   scripts/test.sh --avx2     the kernels' AVX2 paths (-march=haswell, no AVX-512) in
#                              build-avx2/: only the kernel unit tests
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "${1:-}" = "--avx2" ]; then
  kernels="test_gemm test_matmul test_quant test_nf4 test_nf4_matmul test_qmm test_qlora test_tkernels test_bnb4_mat"
  cmake -S . -B build-avx2 -DCMAKE_BUILD_TYPE=Release -DCT_NATIVE=OFF -DCMAKE_C_FLAGS="-march=haswell" >/dev/null
  # shellcheck disable=SC2086
  cmake --build build-avx2 -j"$(nproc)" --target $kernels
  cd build-avx2
  ctest --output-on-failure -j2 --timeout 900 -R "^($(echo $kernels | tr ' ' '|'))\$"
  exit
fi
if [ "${1:-}" = "--asan" ]; then
  dir=build-asan
  scripts/build.sh $dir -DCT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  dir=build
  scripts/build.sh $dir
fi
cd $dir
ctest --output-on-failure -j2 --timeout 900
