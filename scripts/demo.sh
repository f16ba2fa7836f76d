#!/usr/bin/env bash
# Installs what is missing, builds myotwin, and runs the main job on the bundled sample subject
# (sample_data/forearm). Results go to out/demo/.
# Usage: scripts/demo.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" --target myotwin
exe="$root/build/bin/myotwin"
out="$root/out/demo"
rm -rf "$out"
mkdir -p "$out"

echo "== 1. regenerate the sample forearm and check it matches the bundled one, bit for bit"
"$exe" phantom -o "$out/phantom" --quiet
for f in labels.nii.gz tissues.json subject.json; do
  cmp "$out/phantom/$f" "$root/sample_data/forearm/$f" || { echo "demo: $f differs from sample_data/forearm"; exit 1; }
done
echo "identical to sample_data/forearm"

echo "== 2. the sample subject's anatomy"
"$exe" anatomy info "$root/sample_data/forearm/subject.json" -o "$out/anatomy"

echo "== 3. build the muscles: geometry, fibre fields, fibres, motor units (about 20 s)"
"$exe" anatomy "$root/sample_data/forearm/subject.json" -o "$out"

echo "== 4. mesh all tissues with the fibre directions of step 3 (CGAL, about 20 s)"
"$exe" mesh "$root/sample_data/forearm/subject.json" -o "$out"

echo "== 5. electrodes (10 x 32 wrapped grid) and their lead fields by reciprocity (about 25 s)"
"$exe" leadfield "$root/sample_data/forearm/subject.json" -o "$out"

echo "== 6. surface EMG of 40 ED units for 5 s of a 30 % contraction (about 20 s)"
cat > "$out/simulate.json" <<'JSON'
{"simulate": {"muscles": ["ED"], "max_units_per_muscle": 40,
              "drive": {"duration_s": 5.0, "profile": {"type": "constant", "level": 0.3}},
              "emg": {"snr_dB": 20}}}
JSON
"$exe" simulate "$root/sample_data/forearm/subject.json" --config "$out/simulate.json" -o "$out"

echo
echo "results: $out"
echo "  phantom/   labels.nii.gz (open in ITK-SNAP or 3D Slicer), tissues.json, subject.json"
echo "  anatomy/   anatomy_info.json; fibers.vtp (open in ParaView), motor_units.h5, anatomy.json"
echo "  mesh/      mesh.vtu (tets with tissue_label, tissue_class, fibre_direction; ParaView), skin.vtp, mesh_quality.json"
echo "  forward/   electrodes.json/.vtp, leadfields.h5 (cache), muaps.h5, emg.h5 (EMG + ground truth), emg.mat (DEMUSE layout)"
echo "  resolved_config.json   the configuration used (feed back with --config)"
