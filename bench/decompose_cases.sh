#!/usr/bin/env bash
# Decomposition on real and simulated motor-neuron firing (docs/benchmarks.md, "Decomposition on
# real firing"): one subject (the sample forearm, a 13 x 5 grid of 8 mm over ED, not wrapped),
# the EMG of each case simulated on it, decomposed with default parameters and scored against
# its truth (bench_decompose: tolerance 0.5 ms, lags up to 50 ms).
#
# Usage: [MYOTWIN_BIN=DIR] bench/decompose_cases.sh OUT [quick] [-- bench_decompose options]
#   OUT keeps the subject and the cases' EMG (reused when present); quick: the 20 dB cases only.
# Cases (20 s unless said; drive = the project's Fuglevand pool, all 186 ED units):
#   real_ta30    real discharge times (../shared/data/real/caillet2023/S1_30_64L.mat, tibialis
#                anterior at 30 % MVC, decomposed and edited by experts; pauses and doublets
#                as recorded), mapped by recruitment order onto the ED units
#   steadyNN     trapezoid to NN % of the maximum excitation (2 s rise, 16 s plateau, 2 s fall)
#   rampNN       trapezoid to NN % with 8 s rise, 4 s plateau, 8 s fall (recruitment and
#                de-recruitment throughout)
#   dpNN         steadyNN with doublets (3 % of discharges, 5-15 ms) and pauses (1 % of
#                intervals, 0.3-1 s)
# at 20 dB, and the real, steady30, ramp50 and dp50 cases at 10 and 0 dB too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MYOTWIN_BIN:-$root/build/bin} # another build's executables, e.g. an earlier version's
exe="$bin/myotwin"
bench="$bin/bench_decompose"
[ -x "$exe" ] && [ -x "$bench" ] || { echo "bench: build first (scripts/build.sh)"; exit 2; }
[ $# -ge 1 ] || { echo "usage: bench/decompose_cases.sh OUT [quick] [-- bench_decompose options]"; exit 2; }
out=$1; shift
quick=0
if [ $# -ge 1 ] && [ "$1" = quick ]; then quick=1; shift; fi
[ $# -ge 1 ] && [ "$1" = -- ] && shift
mkdir -p "$out/cases"
real="$root/../shared/data/real/caillet2023/S1_30_64L.mat"

base='"anatomy": {"muscles": ["ED", "FDP"]},
  "electrodes": {"grids": [{"name": "ED", "rows": 13, "columns": 5, "ied_mm": 8.0,
                            "centre_mm": [-5.7, 18.6, 22.4], "wrap": false}]}'
echo "{$base}" > "$out/subject.json"
if [ ! -f "$out/forward/leadfields.h5" ]; then
  echo "bench: building the subject in $out (phantom, anatomy, mesh, lead fields)"
  "$exe" phantom --quiet -o "$out/subject"
  for stage in anatomy mesh leadfield; do
    "$exe" "$stage" --quiet --config "$out/subject.json" "$out/subject/subject.json" -o "$out"
  done
fi

simulate() { # name, snr, simulate section (JSON members without braces)
  local name=$1 snr=$2 section=$3
  local file="$out/cases/${name}_${snr}dB.h5"
  [ -f "$file" ] && { echo "$file"; return; }
  printf '{%s,\n "simulate": {"muscles": ["ED"], "emg": {"snr_dB": %s}, %s}}\n' "$base" "$snr" \
    "$section" > "$out/cases/${name}_${snr}dB.json"
  "$exe" simulate --quiet --no-mat --config "$out/cases/${name}_${snr}dB.json" \
    "$out/subject/subject.json" -o "$out" >&2
  mv "$out/forward/emg.h5" "$file"
  echo "$file"
}
steady() { # level
  printf '"drive": {"duration_s": 20, "profile": {"type": "trapezoid", "level": %s, "rise_s": 2, "plateau_s": 16, "fall_s": 2}}' "$1"
}
ramp() { # level
  printf '"drive": {"duration_s": 20, "profile": {"type": "trapezoid", "level": %s, "rise_s": 8, "plateau_s": 4, "fall_s": 8}}' "$1"
}
dp() { # level
  printf '"drive": {"duration_s": 20, "doublet_probability": 0.03, "pause_probability": 0.01, "profile": {"type": "trapezoid", "level": %s, "rise_s": 2, "plateau_s": 16, "fall_s": 2}}' "$1"
}

files=()
snrs=(20)
[ $quick -eq 1 ] || snrs=(20 10 0)
if [ -f "$real" ]; then
  # The signal covers the last real discharge.
  for snr in "${snrs[@]}"; do
    files+=("$(simulate real_ta30 "$snr" "\"discharges\": \"$real\", \"drive\": {\"duration_s\": 41}")")
  done
else
  echo "bench: $real is absent: the real-firing case is left out" >&2
fi
for level in 10 30 50 70; do files+=("$(simulate "steady$level" 20 "$(steady 0.$level)")"); done
for level in 30 50; do files+=("$(simulate "ramp$level" 20 "$(ramp 0.$level)")"); done
for level in 30 50; do files+=("$(simulate "dp$level" 20 "$(dp 0.$level)")"); done
if [ $quick -eq 0 ]; then
  for snr in 10 0; do
    files+=("$(simulate steady30 "$snr" "$(steady 0.30)")")
    files+=("$(simulate ramp50 "$snr" "$(ramp 0.50)")")
    files+=("$(simulate dp50 "$snr" "$(dp 0.50)")")
  done
fi
# One process per recording, so that the peak memory column is that recording's.
first=1
for f in "${files[@]}"; do
  if [ $first -eq 1 ]; then
    "$bench" "$@" "$f" 2> "${f%.h5}.units.log"
    first=0
  else
    "$bench" "$@" "$f" 2> "${f%.h5}.units.log" | tail -n 1
  fi
done
