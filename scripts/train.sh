#!/usr/bin/env bash
# The main job: builds mest and trains ResNet-32 on Fashion-MNIST (Debian's dataset-fashion-mnist)
# with MEST+EM&S at 90% sparsity, block scheme: the defaults of `mest train` (= --preset
# fashion-mnist: 30 epochs, batch 64, lr 0.1 cosine, a mask update every epoch). Prints progress
# with ETA, every mutation, per-epoch metrics and the final test accuracy. Extra arguments go to
# `mest train` (e.g. --epochs 10, or --method dense for the dense baseline).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMEST_BUILD_TESTS=OFF -DMEST_BUILD_BENCH=OFF >/dev/null
cmake --build build --target mest -j"$(nproc)"
exec ./build/mest train --threads "$(nproc)" --out runs/fashion-mnist-mest --force "$@"
