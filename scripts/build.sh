#!/usr/bin/env bash
# Configures and builds myotwin (Release, ccache when present) into build/.
# Usage: scripts/build.sh [cmake --build arguments, e.g. --target myotwin]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j"$jobs" "$@"
