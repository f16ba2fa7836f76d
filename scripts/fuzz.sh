#!/usr/bin/env bash
# Builds one libFuzzer target of tests/fuzz/ (clang, -fsanitize=fuzzer,address,undefined) into
# build-fuzz/ and runs it under `nice -n 10` for SECONDS, starting from the kept corpus
# tests/fuzz/corpus/TARGET/ and the work corpus build-fuzz/corpus/TARGET/ (new inputs go there).
# A finding (crash, abort, ASan/UBSan report, an exception other than the project's input
# errors, > 10 s for one input, > 2 GB RSS) stops the run and is written to
# build-fuzz/artifacts/TARGET/.
# With --keep, the kept corpus is then replaced by a minimised merge (-merge=1) of both corpora:
# a small set of inputs that reaches every edge they reached (-use_counters=0: edges, not hit
# counts, which would keep 3-5 times as many files); the inputs of fixed findings (finding-*) are
# kept under their names.
# SECONDS = 0 only replays the kept corpus under the sanitizers (-runs=0); TARGET `all` does
# that (or the run) for every target in turn.
# Usage: scripts/fuzz.sh [--keep] TARGET SECONDS [libFuzzer options]
#        TARGET: json | label_volume | stl | emg | discharges | all
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
keep=0
if [[ "${1:-}" == "--keep" ]]; then
  keep=1
  shift
fi
if [[ $# -lt 2 ]]; then
  sed -n '2,16p' "$0" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
if [[ $target == all ]]; then
  for t in json label_volume stl emg discharges; do
    "$0" $([[ $keep == 1 ]] && echo --keep) "$t" "$seconds" "$@"
  done
  exit 0
fi
build="$root/build-fuzz"
jobs=$(nproc 2>/dev/null || echo 2)
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DMYOTWIN_FUZZ=ON -DMYOTWIN_BUILD_TESTS=OFF \
  >/dev/null
nice -n 10 cmake --build "$build" -j"$jobs" --target "fuzz_$target"
kept="$root/tests/fuzz/corpus/$target"
work="$build/corpus/$target"
artifacts="$build/artifacts/$target"
mkdir -p "$kept" "$work" "$artifacts"
# allocator_may_return_null: an allocation the machine cannot give returns NULL as glibc's does
# (matio callocs what a .mat header claims, e.g. 33 GB, and handles NULL); without it ASan
# aborts on allocations the real program survives.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp
if [[ $seconds == 0 ]]; then
  nice -n 10 "$build/bin/fuzz_$target" -runs=0 -timeout=10 -rss_limit_mb=2048 "$@" "$kept"
  exit 0
fi
nice -n 10 "$build/bin/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" "$work" "$kept"
if [[ $keep == 1 ]]; then
  merged="$build/merged/$target"
  rm -rf "$merged"
  mkdir -p "$merged"
  nice -n 10 "$build/bin/fuzz_$target" -merge=1 -use_counters=0 -timeout=10 -rss_limit_mb=2048 \
    "$merged" "$kept" "$work"
  # The inputs of fixed findings stay under their names, whatever the merge keeps.
  findings="$build/findings/$target"
  rm -rf "$findings"
  mkdir -p "$findings"
  cp "$kept"/finding-* "$findings"/ 2>/dev/null || true
  rm -rf "$kept"
  mkdir -p "$kept"
  cp "$merged"/* "$kept"/
  cp "$findings"/* "$kept"/ 2>/dev/null || true
  echo "kept corpus: $(ls "$kept" | wc -l) files, $(du -sh "$kept" | cut -f1)"
fi
