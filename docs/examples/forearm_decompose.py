#!/usr/bin/env python3
"""Simulate the sample forearm, decompose its EMG and plot the discharge raster (docs/python.md).

Runs the stages of the command line from Python into OUT (anatomy, mesh, lead fields, simulate,
with the demo's configuration sample_data/forearm/pipeline.json: ED and FDP, a 13 x 5 grid over
ED, 60 ED units at 10 %), decomposes the simulated array with myotwin.decompose(), scores it
against the simulation's truth and saves OUT/raster.png: each identified unit's discharges
(black) over the discharges of the true unit it matched (grey), with its rate of agreement.

    PYTHONPATH=build/python python3 docs/examples/forearm_decompose.py [OUT] [--duration S]

About 1-2 minutes on 2 cores (the mesh and the lead fields take most of it); a second run
reuses the lead fields (leadfields.h5 is a cache). --coarse runs a 40 mm long phantom with one
small muscle instead (about 25 s).
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

import myotwin

root = pathlib.Path(__file__).resolve().parents[2]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("out", nargs="?", default="out/python_example", help="output folder")
parser.add_argument("--duration", type=float, default=10.0, help="EMG duration [s]")
parser.add_argument("--coarse", action="store_true", help="a small phantom, a coarse mesh")
args = parser.parse_args()
out = pathlib.Path(args.out)


def progress_bar():
    """A progress callback printing one line per task (tqdm's would do as well)."""
    state = {"task": None}

    def show(task, done, total):
        if task != state["task"]:
            state["task"] = task
            print(f"  {task} ...", flush=True)

    return show


# 1. The subject and the configuration (a dict of sections, as the command line's --config).
if args.coarse:
    config = {
        "phantom": {"length_mm": 40, "voxel_inplane_mm": 0.75, "voxel_axial_mm": 2.0,
                    "elbow_depth_mm": 40, "elbow_width_mm": 45, "wrist_depth_mm": 35,
                    "wrist_width_mm": 40},
        "anatomy": {"muscles": ["ED"], "fibres": {"model_density_per_mm2": 0.3},
                    "motor_units": {"n_units": 30}},
        "mesh": {"cell_size_mm": {"muscle": 6, "fat": 4, "skin": 2, "bone": 8, "tendon": 6,
                                  "other": 8}, "perturb": False, "exude": False},
        "electrodes": {"grids": [{"name": "g", "rows": 3, "columns": 4, "ied_mm": 6,
                                  "muscle": "ED", "radius_mm": 2}]},
        "simulate": {"muscles": ["ED"], "max_units_per_muscle": 30},
    }
    subject = myotwin.Subject.phantom(out / "subject", config, seed=1)
else:
    config = json.loads((root / "sample_data/forearm/pipeline.json").read_text())
    subject = myotwin.Subject.load(root / "sample_data/forearm/subject.json")
config["simulate"].setdefault("drive", {})["duration_s"] = args.duration
print(f"subject {subject.name}: {subject.labels.shape} voxels of "
      f"{1e3 * subject.spacing_m[0]:.2f} x {1e3 * subject.spacing_m[1]:.2f} x "
      f"{1e3 * subject.spacing_m[2]:.2f} mm")

# 2. The forward model and the EMG: each stage writes its usual files into OUT.
t0 = time.perf_counter()
myotwin.anatomy(subject, out, config, progress=progress_bar())
mesh = myotwin.mesh(subject, out, config, progress=progress_bar())
print(f"mesh: {mesh.nodes_m.shape[0]} nodes, {mesh.tets.shape[0]} tets")
myotwin.lead_fields(subject, out, config, progress=progress_bar())
sim = myotwin.simulate(subject, out, config, progress=progress_bar())
print(f"EMG: {sim.emg_V.shape[0]} channels x {sim.emg_V.shape[1]} samples at {sim.fs_Hz:g} Hz, "
      f"{len(sim.truth['discharges'])} units recruited ({time.perf_counter() - t0:.0f} s)")

# 3. Decompose the array (no file) and score it against the truth.
t0 = time.perf_counter()
result = myotwin.decompose(sim.emg_V, sim.fs_Hz, config.get("decompose"))
score = myotwin.score(result, sim.truth)
print(f"decomposition: {len(result['discharges'])} units in {time.perf_counter() - t0:.0f} s, "
      f"mean RoA {score['mean_roa']:.3f}")

# 4. The raster: one row per identified unit, ordered by recruitment (first discharge).
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

match = {m["decomposed_unit"]: m for m in score["matches"]}  # by unit id (here the index)
true_index = {int(i): k for k, i in enumerate(sim.truth["unit_id"])}
order = sorted(range(len(result["discharges"])),
               key=lambda u: result["discharges"][u][0] if len(result["discharges"][u]) else 1e12)
fig, (ax, ax_emg) = plt.subplots(2, 1, figsize=(10, 0.28 * len(order) + 3.5), sharex=True,
                                 gridspec_kw={"height_ratios": [max(len(order), 1), 6]})
for row, u in enumerate(order):
    m = match.get(u)
    if m is not None:
        t_true = sim.truth["discharge_times_s"][true_index[m["true_unit"]]]
        ax.vlines(t_true, row + 0.55, row + 1.45, color="0.75", linewidth=2.5)
    ax.vlines(result["discharge_times_s"][u], row + 0.65, row + 1.35, color="k", linewidth=0.8)
    label = f"RoA {m['roa']:.2f}" if m is not None else "unmatched"
    ax.text(1.005, row + 1, label, transform=ax.get_yaxis_transform(), fontsize=7,
            va="center")
ax.set_ylim(0.3, len(order) + 0.7)
ax.set_ylabel("identified unit (by recruitment)")
ax.set_title(f"{subject.name}: {len(order)} of {len(sim.truth['discharges'])} units decomposed "
             f"from {sim.emg_V.shape[0]} channels, mean RoA {score['mean_roa']:.3f}\n"
             "black: decomposed discharges; grey: the true unit's they match", fontsize=10)
channel = int(np.argmax(np.sqrt(np.mean(sim.emg_V**2, axis=1))))
t = np.arange(sim.emg_V.shape[1]) / sim.fs_Hz
ax_emg.plot(t, 1e6 * sim.emg_V[channel], color="k", linewidth=0.3)
name = (sim.channel_names[channel] if sim.channel_names else
        "row {}, column {}".format(*sim.grid_row_col[channel]))
ax_emg.set_ylabel(f"EMG [uV]\n{name}")
ax_emg.set_xlabel("time [s]")
fig.tight_layout()
png = out / "raster.png"
fig.savefig(png, dpi=110)
print(f"raster: {png}")
sys.exit(0)
