#!/usr/bin/env bash
# Issue 5's targets on the accuracy recipe of bench/accuracy_table.sh (fashion-mnist preset, EPOCHS
# epochs on the first LIMIT training examples, seed 914, one thread per run):
#  1. MEST+EM&S block 90% with and without --data-efficient, run at the same time (one thread each,
#     so both see the same machine): sample passes, wall time and test accuracy side by side;
#  2. examples with 0 and with at most 1 forgetting events at the end of stage 1 for dense, 90% and
#     95% MEST+EM&S: the 90% count comes from run 1; dense and 95% run until stage 1 ends and are
#     then stopped with SIGINT (their checkpoint is kept, `mest train --resume` would finish them).
#   bench/data_efficiency_study.sh [RUN_ROOT]
# Env: MEST (binary), EPOCHS (8), LIMIT (20000), STAGE1 (3), REMOVE (0.45: the removed fraction).
set -euo pipefail
MEST=${MEST:-build/mest}
ROOT=${1:-runs/data-efficiency}
EPOCHS=${EPOCHS:-8}
LIMIT=${LIMIT:-20000}
STAGE1=${STAGE1:-3}
REMOVE=${REMOVE:-0.45}
mkdir -p "$ROOT"
common=(--preset fashion-mnist --epochs "$EPOCHS" --limit-train "$LIMIT" --threads 1 --quiet --force)
de=(--data-efficient --de-stage1-epochs "$STAGE1" --de-remove-fraction "$REMOVE")

# Runs `mest train` into $ROOT/$1 (log in $ROOT/$1.log) unless its summary.json exists.
train() {
  local name=$1
  shift
  [ -f "$ROOT/$name/summary.json" ] && return 0
  "$MEST" train "${common[@]}" --out "$ROOT/$name" "$@" >"$ROOT/$name.log" 2>&1
}

# Runs until the stage-1 report line appears, then interrupts; the line is kept in $ROOT/$1.stage1.
stage1_only() {
  local name=$1
  shift
  [ -s "$ROOT/$name.stage1" ] && return 0
  "$MEST" train "${common[@]}" "${de[@]}" --out "$ROOT/$name" "$@" >"$ROOT/$name.log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if grep -q "^data efficiency: after" "$ROOT/$name.log"; then
      kill -INT "$pid"
      break
    fi
    sleep 2
  done
  wait "$pid" || true
  grep "^data efficiency: after" "$ROOT/$name.log" >"$ROOT/$name.stage1"
}

echo "== 1. MEST+EM&S block 90%, with and without data efficiency (side by side)"
train mest-ems-block-0.9 --method mest-ems --scheme block --sparsity 0.9 &
train mest-ems-block-0.9-de --method mest-ems --scheme block --sparsity 0.9 "${de[@]}" &
wait
echo "== 2. stage-1 forgetting counts, dense and 95%"
stage1_only dense-stage1 --method dense &
stage1_only mest-ems-block-0.95-stage1 --method mest-ems --scheme block --sparsity 0.95 &
wait
grep "^data efficiency: after" "$ROOT/mest-ems-block-0.9-de.log" >"$ROOT/mest-ems-block-0.9-de.stage1"

echo
echo "| run | sample passes | wall time | final test acc |"
echo "|---|---|---|---|"
for name in mest-ems-block-0.9 mest-ems-block-0.9-de; do
  python3 - "$ROOT/$name/summary.json" "$name" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {s['sample_passes']:,} | {s['seconds']:.0f} s | {100*s['final_test_acc']:.2f}% |")
PY
done
echo
echo "| model at the end of stage 1 | 0 forgetting events | at most 1 |"
echo "|---|---|---|"
for name in dense-stage1 mest-ems-block-0.9-de mest-ems-block-0.95-stage1; do
  sed -E "s/^data efficiency: after [0-9]+ epochs ([0-9]+) of ([0-9]+) examples were learned and never forgotten, ([0-9]+) forgotten at most once.*/| $name | \1 of \2 | \3 |/" \
    "$ROOT/$name.stage1"
done
