#!/usr/bin/env python3
"""The cost of calling the decomposition through Python (docs/benchmarks.md, docs/python.md).

`python_overhead.py stages OUT` measures the demo's stages instead (see stages() below).

Decomposes one synthetic convolutive mixture (python/tests/conftest.py: synthetic_emg) with the
module and with `myotwin decompose` on the same array written as emg.csv, one thread each, and
prints the module's wall time, the time the library reports for its own steps, the executable's
time (reading the CSV and writing the results included) and the module's conversions.

Usage: PYTHONPATH=build/python python3 bench/python_overhead.py [channels] [duration_s] [R]
       PYTHONPATH=build/python python3 bench/python_overhead.py stages OUT [STAGE...] [cli-first]
"""

import json
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

root = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root / "python" / "tests"))
import myotwin  # noqa: E402
from conftest import synthetic_emg, write_csv  # noqa: E402


def stages(out, only=None, cli_first=False):
    """The demo's stages (sample forearm, sample_data/forearm/pipeline.json): anatomy, mesh,
    lead fields, simulate, invert, each run by the module into OUT/py and by the executable into
    OUT/cli (the same threads: all cores), in that order stage by stage (the executable first
    with `cli_first`; `only`: those stages, on an OUT where the earlier ones ran). Prints per
    stage the
    module's wall time, the executable's, and the time the stage's own report gives (its
    Stopwatch, from after the configuration is read to the end) where it has one."""
    out = pathlib.Path(out)
    subject = root / "sample_data/forearm/subject.json"
    config = root / "sample_data/forearm/pipeline.json"
    s = myotwin.Subject.load(subject)
    steps = [
        ("anatomy", lambda o: myotwin.anatomy(s, o, config), ["anatomy", subject], None),
        ("mesh", lambda o: myotwin.mesh(s, o, config), ["mesh", subject],
         lambda o: json.loads((o / "mesh/mesh_quality.json").read_text())["time_s"]["command"]),
        ("leadfield", lambda o: myotwin.lead_fields(s, o, config, cache=False),
         ["leadfield", subject, "--no-cache"],
         lambda o: json.loads((o / "forward/leadfield_report.json").read_text())["time_s"]),
        ("simulate", lambda o: myotwin.simulate(s, o, config), ["simulate", subject],
         lambda o: json.loads((o / "forward/simulate_report.json").read_text())["time_s"]["total"]),
        ("invert", lambda o: myotwin.invert(o / "forward/emg.h5", s, o, config),
         ["invert", None, "--subject", subject],
         lambda o: json.loads((o / "inversion/summary.json").read_text())["time_s"]["total"]),
    ]
    print("| stage | module | its own report | module - report | executable | module / executable |")
    print("|---|---|---|---|---|---|")
    for name, call, args, reported in steps:
        if only and name not in only:
            continue
        args = [str(out / "cli" / "forward/emg.h5") if a is None else str(a) for a in args]

        def run_module():
            t0 = time.perf_counter()
            call(out / "py")
            return time.perf_counter() - t0

        def run_cli():
            t0 = time.perf_counter()
            subprocess.run([str(exe), *args, "-o", str(out / "cli"), "--config", str(config),
                            "--quiet"], check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - t0

        if cli_first:
            cli_s = run_cli()
            module_s = run_module()
        else:
            module_s = run_module()
            cli_s = run_cli()
        own = reported(out / "py") if reported else None
        own_text = f"{own:.2f} s" if own is not None else ""
        diff_text = (f"{module_s - own:.3f} s ({100 * (module_s - own) / own:.2f} %)"
                     if own is not None else "")
        print(f"| {name} | {module_s:.2f} s | {own_text} | {diff_text} | {cli_s:.2f} s | "
              f"{module_s / cli_s:.3f} |", flush=True)


exe = root / "build" / "bin" / "myotwin"
if len(sys.argv) > 2 and sys.argv[1] == "stages":
    names = [a for a in sys.argv[3:] if a != "cli-first"]
    stages(sys.argv[2], names or None, "cli-first" in sys.argv[3:])
    sys.exit(0)

n_channels = int(sys.argv[1]) if len(sys.argv) > 1 else 64
duration_s = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
extension = int(sys.argv[3]) if len(sys.argv) > 3 else 16

emg, fs, _ = synthetic_emg(seed=3, n_channels=n_channels, n_units=8, duration_s=duration_s)
config = {"extension_factor": extension}
myotwin.set_threads(1)

t0 = time.perf_counter()
result = myotwin.decompose(emg, fs, config)
module_s = time.perf_counter() - t0
s = result["stats"]
steps_s = s["time_preprocess_s"] + s["time_whiten_s"] + s["time_iterations_s"]

# The conversions alone: the config read and the array in (a copy into the library's layout),
# measured by a call that fails on the check after them (the sampling rate).
t0 = time.perf_counter()
try:
    myotwin.decompose(emg, -1.0, config)
except ValueError:
    pass
config_s = time.perf_counter() - t0

with tempfile.TemporaryDirectory() as d:
    d = pathlib.Path(d)
    write_csv(d / "emg.csv", emg, fs)
    (d / "run.json").write_text(json.dumps({"decompose": config}))
    t0 = time.perf_counter()
    subprocess.run([str(exe), "decompose", str(d / "emg.csv"), "-o", str(d / "out"), "--config",
                    str(d / "run.json"), "--threads", "1", "--quiet", "--no-mat"], check=True)
    cli_s = time.perf_counter() - t0
    summary = json.loads((d / "out" / "decomposition" / "summary.json").read_text())

print(f"input: {n_channels} channels x {emg.shape[1]} samples at {fs:g} Hz, R = {extension}, "
      f"{len(result['discharges'])} units, 1 thread")
print(f"module decompose():                 {module_s:8.3f} s")
print(f"  library's steps (preprocess, whiten, iterations): {steps_s:8.3f} s")
print(f"  config read + array copy (a failing call): {config_s:8.4f} s")
t = summary["time_s"]
print(f"myotwin decompose (process, CSV in, h5 out): {cli_s:8.3f} s "
      f"(its time_s.total {t['total']:.3f} s)")
print(f"  library's steps (preprocess, whiten, iterations): "
      f"{t['preprocess'] + t['whiten'] + t['iterations']:8.3f} s")
print(f"python overhead: {100 * (module_s - steps_s) / steps_s:.1f} % of the library's steps "
      f"(conversions, MUAPs and drive included)")
