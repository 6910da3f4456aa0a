#!/usr/bin/env bash
# Fuzzes the readers of user files (IDX, CIFAR, checkpoints, --config JSON) with libFuzzer: builds
# the targets of fuzz/ with clang, ASan and UBSan, then runs each for FUZZ_SECONDS (default 600, the
# documented long run; CI uses 30), FUZZ_JOBS of them at a time (default: one per core), and prints
# the executions libFuzzer reports. A crash, sanitizer report, leak, timeout (> 10 s per input), an
# RSS above 2 GiB or an exception other than a one-line input error is a finding: its input goes to
# BUILD/findings/<target>/ and the script exits 1. Reproduce one with BUILD/fuzz_<target> FILE.
#
#   scripts/fuzz.sh                       # all four targets, 600 s each
#   FUZZ_SECONDS=60 scripts/fuzz.sh idx   # one target
#   FUZZ_BUILD_DIR=build-ci-fuzz ...      # build directory (default build-fuzz)
#
# The working corpus (BUILD/fuzz-corpus/<target>/) grows over runs and starts from the committed
# seeds, tests/fixtures/fuzz/<target>/ (which the corpus test of the normal build also reads);
# regenerate those after a format change with BUILD/fuzz_write_seeds tests/fixtures/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-600}
build=${FUZZ_BUILD_DIR:-build-fuzz}
targets=("$@")
((${#targets[@]})) || targets=(idx cifar checkpoint config)

CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMEST_WERROR=ON \
  -DMEST_BUILD_FUZZ=ON -DMEST_BUILD_TESTS=OFF -DMEST_BUILD_BENCH=OFF >/dev/null
parallel=${FUZZ_JOBS:-$(nproc)}
build_targets=()
for t in "${targets[@]}"; do build_targets+=("fuzz_$t"); done
cmake --build "$build" -j"$(nproc)" --target "${build_targets[@]}"

fuzz_one() {
  local t=$1 corpus="$build/fuzz-corpus/$1" findings="$build/findings/$1"
  mkdir -p "$corpus" "$findings"
  local rc=0
  "$build/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$findings/" "$corpus" "tests/fixtures/fuzz/$t" >"$build/fuzz-$t.log" 2>&1 || rc=$?
  echo "$rc" >"$build/fuzz-$t.rc"
}

# One OpenMP thread: the readers are serial, and thread pools only slow every input down.
export OMP_NUM_THREADS=1
running=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  if ((++running >= parallel)); then
    wait -n
    running=$((running - 1))
  fi
done
wait

status=0
for t in "${targets[@]}"; do
  log="$build/fuzz-$t.log"
  rc=$(cat "$build/fuzz-$t.rc")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  inputs=$(find "$build/fuzz-corpus/$t" -type f | wc -l)
  echo "fuzz_$t: ${execs:-?} executions in ${seconds} s, corpus $inputs inputs, exit code $rc"
  if ((rc != 0)); then
    status=1
    echo "fuzz_$t: FINDING (input in $build/findings/$t/, log $log):"
    grep -m1 -A30 -E "ERROR: |what\(\)|runtime error" "$log" || tail -30 "$log"
  fi
done
exit $status
