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

echo "== 3. the whole chain on two muscles (ED, FDP), a 13 x 5 grid over ED and 10 s of a 10 % trapezoid:"
echo "   anatomy, mesh, lead fields, simulate, decompose, score (myotwin pipeline, about 1-2 minutes)"
"$exe" pipeline "$root/sample_data/forearm/subject.json" --config "$root/sample_data/forearm/pipeline.json" -o "$out"

echo "== 4. model-informed separation of the same EMG through the subject's model (myotwin invert)"
"$exe" invert "$out/forward/emg.h5" --subject "$root/sample_data/forearm/subject.json" \
  --config "$root/sample_data/forearm/pipeline.json" -o "$out"

echo "== 5. the report of the whole run: one offline HTML page (myotwin report, docs/report.md)"
"$exe" report "$out" --subject "$root/sample_data/forearm/subject.json"
echo
echo "results: $out"
echo "  phantom/   labels.nii.gz (open in ITK-SNAP or 3D Slicer), tissues.json, subject.json"
echo "  anatomy/   anatomy_info.json; fibers.vtp (open in ParaView), motor_units.h5, anatomy.json"
echo "  mesh/      mesh.vtu (tets with tissue_label, tissue_class, fibre_direction; ParaView), skin.vtp, mesh_quality.json"
echo "  forward/   electrodes.json/.vtp, leadfields.h5 (cache), muaps.h5, emg.h5 (EMG + ground truth + force), emg.mat (DEMUSE layout)"
echo "  decomposition/  decomposition.h5, summary.json, decomposition.mat (MUPulses), score.json (RoA against the truth)"
echo "  inversion/ the model-informed decomposition and properties.json (territory, depth, size, CV per unit)"
echo "  pipeline/  stage keys (unchanged stages are reused) and summary.json"
echo "  resolved_config.json   the configuration used (feed back with --config)"
echo "  report.html  every stage's pictures in one page (open in a browser): $out/report.html"
