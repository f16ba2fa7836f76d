#!/usr/bin/env bash
# Builds myotwin with AddressSanitizer + UndefinedBehaviorSanitizer (MYOTWIN_SANITIZE=ON, -O1)
# into build-sanitize/ and runs the fast test suites under them (the minute-long chain tests
# are left out unless --all is given). Any report fails the run.
# Usage: scripts/sanitize.sh [--all] [ctest arguments, e.g. -R Config]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
all=0
if [[ "${1:-}" == "--all" ]]; then
  all=1
  shift
fi
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S "$root" -B "$root/build-sanitize" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DMYOTWIN_SANITIZE=ON >/dev/null
cmake --build "$root/build-sanitize" -j"$jobs"
cd "$root/build-sanitize"
# Leaks of libraries' caches at exit are not ours (ITK, HDF5, OpenMP): report errors only.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1
# Reports inside third-party headers listed (with the reason) in ubsan-suppressions.txt pass.
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$root/scripts/ubsan-suppressions.txt
if [[ $all == 1 ]]; then
  ctest --output-on-failure -j"$jobs" "$@"
else
  ctest --output-on-failure -j"$jobs" -E 'Pipeline\.|CliBench|BmissBench' "$@"
fi
