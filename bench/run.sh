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
# Meshing: three criteria levels on the sample forearm (sizes in mm per tissue class), the
# default with the anatomy's fibres (OUT/anatomy from the run above), and the real CT.
mesh_rows=()
mesh_case() { # name, output dir, extra arguments...
  local name=$1 out=$2; shift 2
  measure "$name" "$exe" mesh --quiet "$@" -o "$out"
  local tets
  tets=$(python3 -c "import json,sys; q=json.load(open(sys.argv[1])); print(q['n_tets'], q['n_nodes'], '%.1f' % q['min_dihedral_deg'], '%.1f' % q['p01_min_dihedral_deg'], '%.3f' % min(t['volume_ratio'] for t in q['tissues']))" "$out/mesh/mesh_quality.json")
  mesh_rows+=("$(printf '%-44s %s' "$name" "$tets")")
}
echo '{"mesh": {"cell_size_mm": {"skin": 2.0, "fat": 3.5, "muscle": 6.0, "tendon": 4.0, "bone": 8.0}, "facet_distance_mm": {"skin": 0.4, "fat": 0.8, "muscle": 0.8, "bone": 0.8, "tendon": 0.3}}}' > "$work/coarse.json"
echo '{"mesh": {"cell_size_mm": {"skin": 1.0, "fat": 1.8, "muscle": 3.0, "tendon": 2.0, "bone": 4.0}, "facet_distance_mm": {"skin": 0.25, "fat": 0.25, "muscle": 0.25, "bone": 0.25, "tendon": 0.15}}}' > "$work/fine.json"
forearm="$root/sample_data/forearm/subject.json"
mesh_case "mesh, sample forearm, coarse" "$work/mesh_coarse" --config "$work/coarse.json" "$forearm"
mesh_case "mesh, sample forearm, default" "$work/mesh_default" "$forearm"
mesh_case "mesh, sample forearm, fine" "$work/mesh_fine" --config "$work/fine.json" "$forearm"
mesh_case "mesh, forearm default + anatomy fibres" "$work/forearm" "$forearm"
if [ -f "$root/../shared/data/real/totalsegmentator_ct/organs_seg.nii.gz" ]; then
  mesh_case "mesh, real CT (41 labels, 3 mm voxels)" "$work/ct" "$root/sample_data/totalsegmentator_ct/subject.json"
fi

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
echo
printf '%-44s %s\n' "mesh" "tets nodes min_dihedral_deg p01_min_dihedral_deg worst_volume_ratio"
printf '%s\n' "${mesh_rows[@]}"
