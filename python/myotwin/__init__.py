"""myotwin from Python: the stage libraries with NumPy arrays in and out.

The compiled part (`myotwin._core`) is built by the project's CMake from the same libraries as
the `myotwin` executable; configuration dicts are read by the same declared readers, and errors
keep the command line's messages (ValueError for bad input, OSError for files). docs/python.md
describes every function.

    import numpy, myotwin
    result = myotwin.decompose(emg, 2048.0, {"sil_threshold": 0.85})
    for unit, times in enumerate(result["discharge_times_s"]):
        print(unit, len(times), result["sil"][unit])

    subject = myotwin.Subject.phantom("run/subject", seed=7)      # or Subject.load(path)
    myotwin.anatomy(subject, "run/out"); myotwin.mesh(subject, "run/out")
    myotwin.lead_fields(subject, "run/out")
    sim = myotwin.simulate(subject, "run/out", {"simulate": {"muscles": ["ED"]}})
    result = myotwin.decompose(sim.emg_V, sim.fs_Hz)
"""

import os as _os

from . import _core
from ._core import (  # noqa: F401
    __version__,
    config_defaults,
    get_threads,
    read_emg,
    read_h5,
    read_mesh,
    read_spike_trains,
    score,
    set_log_level,
    set_max_memory_GiB,
    set_threads,
)
from ._results import Decomposition, to_openhdemg  # noqa: F401
from ._stages import (  # noqa: F401
    Anatomy,
    Iemg,
    Inversion,
    LeadFields,
    Mesh,
    Simulation,
    Subject,
    anatomy,
    iemg,
    invert,
    lead_fields,
    mesh,
    simulate,
)

__all__ = [
    "Anatomy",
    "Decomposition",
    "Iemg",
    "Inversion",
    "LeadFields",
    "Mesh",
    "Simulation",
    "Subject",
    "anatomy",
    "config_defaults",
    "decompose",
    "get_threads",
    "iemg",
    "invert",
    "lead_fields",
    "mesh",
    "read_decomposition",
    "read_emg",
    "read_h5",
    "read_mesh",
    "read_spike_trains",
    "score",
    "set_log_level",
    "set_max_memory_GiB",
    "set_threads",
    "simulate",
    "to_openhdemg",
]


def decompose(emg, fs_Hz, config=None, progress=None, **keys):
    """Motor-unit decomposition of `emg` (#channels x #samples float64 array [V]) sampled at
    `fs_Hz` [Hz], as `myotwin decompose` does it. `config`: a dict of the keys of the
    configuration section `decompose`, or the path of a run configuration (e.g. a
    resolved_config.json); keyword arguments are `decompose` keys that win over it.
    `progress(task, done, total)` is called as the work advances; Ctrl-C stops it at the next
    safe point (KeyboardInterrupt). Returns a Decomposition (a dict of NumPy arrays,
    docs/python.md, with to_openhdemg()). Raises ValueError for bad input (the command line's
    message)."""
    return Decomposition(_core.decompose(emg, fs_Hz, config, progress, **keys))


def read_decomposition(path):
    """Reads a decomposition (decomposition.h5, or a .mat with MUPulses and fsamp) as a dict
    with the names decompose() returns: `fs_Hz`, `n_samples`, `unit_id`, `discharges` (a list
    of int64 arrays of 0-based sample indices), `discharge_times_s`; from decomposition.h5 also
    every per-unit dataset (`sil`, `pnr_dB`, `cov_isi`, `rate_pps`, `n_discharges`, `sources`,
    `filters`, `muaps`, ...), `neural_drive_pps`, `channels` (a dict) and the file's attributes.
    Raises OSError when the file cannot be read, ValueError when it is not a decomposition."""
    trains = read_spike_trains(path)
    out = Decomposition()
    if str(_os.fspath(path)).lower().endswith((".h5", ".hdf5")):
        tree = read_h5(path)
        units = tree.pop("units", {})
        units.pop("discharges", None)
        out.update(tree)
        out.update(units)
    out.update(trains)
    out["discharge_times_s"] = [d / trains["fs_Hz"] for d in trains["discharges"]]
    return out
