#!/usr/bin/env bash
# Installs mest's Debian build and data dependencies; does nothing when they are already there.
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config libhwy-dev libdnnl-dev libcli11-dev nlohmann-json3-dev
          zlib1g-dev libjemalloc-dev libgtest-dev libgmock-dev libbenchmark-dev dataset-fashion-mnist clang-format
          chromium clang libclang-rt-dev libomp-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
