#!/usr/bin/env bash
# The whole test suite: a Release build with warnings as errors, then the same tests built with
# AddressSanitizer + UndefinedBehaviorSanitizer, plus a clang-format check; then (clang) a short run
# of every fuzz target and the kernel tests under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)

echo "== format check"
git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run --Werror

echo "== release build + tests"
cmake -S . -B build-ci -G Ninja -DCMAKE_BUILD_TYPE=Release -DMEST_WERROR=ON >/dev/null
cmake --build build-ci -j"$jobs"
ctest --test-dir build-ci --output-on-failure -j"$jobs" --timeout 900

echo "== asan+ubsan build + tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEST_WERROR=ON -DMEST_SANITIZE=ON \
  -DMEST_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 1800

echo "== fuzz targets, ${FUZZ_SECONDS:-30} s each (scripts/fuzz.sh runs 600 s)"
FUZZ_SECONDS=${FUZZ_SECONDS:-30} FUZZ_BUILD_DIR=build-ci-fuzz scripts/fuzz.sh

echo "== tsan kernel tests"
CC=clang CXX=clang++ cmake -S . -B build-ci-tsan -G Ninja -DCMAKE_BUILD_TYPE=Release -DMEST_WERROR=ON \
  -DMEST_TSAN=ON -DMEST_BUILD_TESTS=OFF -DMEST_BUILD_BENCH=OFF >/dev/null
cmake --build build-ci-tsan -j"$jobs" --target mest_kernel_tests
ctest --test-dir build-ci-tsan --output-on-failure
echo "== all tests passed"
