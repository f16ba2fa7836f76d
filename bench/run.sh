#!/usr/bin/env bash
# Benchmarks of whole commands on this machine: wall time and peak memory, printed as a table.
# Usage: bench/run.sh            (after scripts/build.sh; uses build/bin/myotwin)
# The real biceps case runs when ../shared/data is beside the project.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exe="$root/build/bin/myotwin"
work=$(mktemp -d /tmp/myotwin-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
[ -x "$exe" ] || { echo "bench: build first (scripts/build.sh)"; exit 2; }

rows=()
measure() { # name, command...
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out.log" 2>&1 || { echo "bench: $name failed"; cat "$work/out.log"; exit 1; }
  read -r wall kb < "$work/time"
  rows+=("$(printf '%-44s %10s %12s' "$name" "$wall" "$((kb / 1024))")")
}

measure "phantom (6.8 M voxels, write .nii.gz)" "$exe" phantom --quiet -o "$work/phantom"
measure "anatomy info (sample forearm)" "$exe" anatomy info --quiet "$root/sample_data/forearm/subject.json"
measure "anatomy, sample forearm (14 muscles)" "$exe" anatomy --quiet "$root/sample_data/forearm/subject.json" -o "$work/forearm"
measure "anatomy, sample forearm, --threads 1" "$exe" anatomy --quiet --threads 1 "$root/sample_data/forearm/subject.json" -o "$work/forearm1"
cmp -s "$work/forearm/anatomy/motor_units.h5" "$work/forearm1/anatomy/motor_units.h5" && same=identical || same=DIFFERENT
stl="$root/../shared/data/real/opendihu_biceps/biceps_full.stl"
if [ -f "$stl" ]; then
  echo '{"surface_import": {"voxel_size_mm": 1.0, "muscle_name": "biceps"}}' > "$work/biceps.json"
  measure "anatomy import, real biceps STL (1 mm)" "$exe" anatomy import --quiet --config "$work/biceps.json" "$stl" -o "$work/biceps"
  measure "anatomy, real biceps (1 mm voxels)" "$exe" anatomy --quiet "$work/biceps/subject.json" -o "$work/biceps"
fi

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(date -u +%Y-%m-%d)"
printf '%-44s %10s %12s\n' "case" "wall_s" "peak_MiB"
printf '%s\n' "${rows[@]}"
echo "motor_units.h5 at 2 threads vs 1 thread: $same"
