#!/usr/bin/env bash
# The whole test suite: a Release build with warnings as errors, then the same tests built with
# AddressSanitizer + UndefinedBehaviorSanitizer, plus a clang-format check.
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
echo "== all tests passed"
