#!/usr/bin/env bash
# Accuracy table of issue 4: methods x schemes x sparsity on Fashion-MNIST, ResNet-32 (16/32/64),
# one recipe for every row, same seed. Each run writes RUN_ROOT/<name>/summary.json; the table is
# printed from those at the end (rows already done are reused, so the script can be resumed).
#   bench/accuracy_table.sh [RUN_ROOT] [extra mest train flags...]
# Recipe (override with extra flags): the fashion-mnist preset (batch 64, lr 0.1 cosine, weight
# decay 5e-4, a mask update every epoch) with EPOCHS epochs on the first LIMIT training examples.
set -euo pipefail
MEST=${MEST:-build/mest}
ROOT=${1:-runs/accuracy}
shift || true
EPOCHS=${EPOCHS:-8}
LIMIT=${LIMIT:-20000}
THREADS=${THREADS:-1}
ROWS=${ROWS:-"dense:block:0 mest-ems:unstructured:0.9 mest-ems:block:0.9 mest-ems:pattern:0.9 mest-ems:unstructured:0.95 set:unstructured:0.9 set:block:0.9 static:unstructured:0.9 static:block:0.9"}
mkdir -p "$ROOT"
for row in $ROWS; do
  IFS=: read -r method scheme sparsity <<<"$row"
  name="$method-$scheme-$sparsity"
  [ -f "$ROOT/$name/summary.json" ] && continue
  echo "== $name"
  "$MEST" train --preset fashion-mnist --method "$method" --scheme "$scheme" --sparsity "$sparsity" \
    --epochs "$EPOCHS" --limit-train "$LIMIT" --threads "$THREADS" --quiet --force --out "$ROOT/$name" "$@" |
    grep -E "^final|^method" || true
done
echo "| method | scheme | sparsity | final test acc | best test acc | wall time |"
echo "|---|---|---|---|---|---|"
for row in $ROWS; do
  IFS=: read -r method scheme sparsity <<<"$row"
  s="$ROOT/$method-$scheme-$sparsity/summary.json"
  [ -f "$s" ] || continue
  python3 - "$s" "$method" "$scheme" "$sparsity" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
m, sc, sp = sys.argv[2:5]
print(f"| {m} | {sc if m != 'dense' else '-'} | {float(s['sparse_layer_sparsity'])*100:.1f}% | "
      f"{100*s['final_test_acc']:.2f}% | {100*s['best_test_acc']:.2f}% | {s['seconds']/60:.1f} min |")
PY
done
