#!/usr/bin/env bash
# Installs the Debian packages myotwin needs to build and test. Idempotent: quiet and fast when
# everything is present. Usage: scripts/install-deps.sh
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libeigen3-dev
  nlohmann-json3-dev
  libcli11-dev
  libhdf5-dev
  libinsighttoolkit5-dev
  libvtk9-dev
  libmatio-dev
  libcgal-dev libgmp-dev libmpfr-dev libboost-dev
  libsuitesparse-dev libopenblas0-serial
  libgtest-dev
  zlib1g-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
