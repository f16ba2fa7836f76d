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
  libfftw3-dev
  libopenmpi-dev openmpi-bin
  libgtest-dev
  python3-dev pybind11-dev python3-numpy python3-pytest python3-pandas python3-matplotlib
  zlib1g-dev
  nodejs chromium
)

missing=()
# npm: Debian's package, unless the installed nodejs brings its own (as NodeSource's does).
command -v npm >/dev/null 2>&1 || packages+=(npm)
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: done"
fi

# The JavaScript bundles `myotwin report` inlines (vega, vega-lite, vega-embed at the exact
# versions of report/package-lock.json; docs/report.md): installed again only when the lock file
# changed since the last `npm ci`.
report_dir=$(cd "$(dirname "$0")/../report" && pwd)
if ! cmp -s "$report_dir/package-lock.json" "$report_dir/node_modules/.package-lock.json.installed"; then
  echo "install-deps: npm ci in report/"
  (cd "$report_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$report_dir/package-lock.json" "$report_dir/node_modules/.package-lock.json.installed"
fi
