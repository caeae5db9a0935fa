#!/usr/bin/env bash
# Installs what gpujob needs on Debian 12 / Ubuntu 24.04, skipping what is already there.
# Used by scripts/demo.sh and scripts/test.sh; safe to run again.
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config libtorch-dev libopenmpi-dev openmpi-bin
          libhdf5-openmpi-dev hdf5-tools libyaml-cpp-dev catch2 libspdlog-dev libcli11-dev
          nlohmann-json3-dev libpcre2-dev libsentencepiece-dev libicu-dev python3 python3-numpy python3-h5py
          slurm-wlm munge procps)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps.sh: missing ${missing[*]} and not root (no sudo)" >&2; exit 1; }
  sudo="sudo"
fi
echo "deps.sh: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
