"""The stages of the command line from Python (docs/python.md, "Stages").

Each stage function runs the subcommand of the same name in this process (`_core._run_stage`:
the executable's own code, with the GIL released), so that it writes the usual files into the
output folder `out`, bit for bit those of the command line, and returns an object whose
attributes read them as NumPy arrays when first used. Configuration: `config` is a run
configuration (a dict of sections, as `myotwin config defaults` prints and resolved_config.json
holds, or the path of such a file), keyword arguments are keys of the stage's own section that
win over it; both are read by the command line's declared readers, so unknown keys and values out
of range raise ValueError with its messages, and files that cannot be read raise OSError.
"""

import functools
import json
import os
import tempfile

import numpy as np

from . import _core
from ._results import Decomposition


def _path(p):
    return os.fspath(p)


def _run(args, config, section, progress, seed, keys):
    """Runs the subcommand `args` with `--quiet`, and `--seed` and `--threads` when `keys` has
    them (not None)."""
    args = [str(a) for a in args] + ["--quiet"]
    if seed is not None:
        args += ["--seed", str(int(seed))]
    threads = keys.pop("threads", None)
    if threads is not None:
        args += ["--threads", str(int(threads))]
    _core._run_stage(args, config, section, progress, keys)


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class _Outputs:
    """The files a stage wrote under `out`; subclasses read them on first use."""

    _folder = ""

    def __init__(self, out):
        self.out = _path(out)

    @property
    def folder(self):
        """The folder of this stage's files."""
        return os.path.join(self.out, self._folder)

    def file(self, name):
        """The path of the stage's file `name`."""
        return os.path.join(self.folder, name)

    @functools.cached_property
    def config(self):
        """The resolved run configuration the stage ran with (resolved_config.json)."""
        return _read_json(os.path.join(self.out, "resolved_config.json"))

    def __repr__(self):
        return f"{type(self).__name__}(out={self.out!r})"


class Subject:
    """A subject: subject.json, its label volume and tissue table, read as `myotwin anatomy`
    reads them. `labels` is the label volume as an int32 array indexed [i, j, k] (Fortran order,
    the file's memory), `spacing_m`, `origin_m` and `direction` (columns: the i, j, k axes) its
    geometry, `tissues` the tissue table (a list of dicts)."""

    def __init__(self, path, info):
        self.path = _path(path)
        self.name = info["name"]
        self.labels = info["labels"]
        self.spacing_m = info["spacing_m"]
        self.origin_m = info["origin_m"]
        self.direction = info["direction"]
        self.tissues = info["tissues"]
        self.labels_file = info["labels_file"]
        self.tissues_file = info["tissues_file"]

    @classmethod
    def load(cls, path):
        """Reads subject.json (and its labels and tissues). Raises OSError for a file that
        cannot be read, ValueError for one that is not a subject (the command line's
        messages)."""
        return cls(path, _core._read_subject(_path(path)))

    @classmethod
    def phantom(cls, out, config=None, *, seed=None, progress=None, **keys):
        """Generates the procedural forearm into the folder `out` (labels.nii.gz, tissues.json,
        subject.json, resolved_config.json) as `myotwin phantom -o OUT` does and loads it.
        Keyword arguments are keys of the section `phantom` (lengths in mm)."""
        _run(["phantom", "-o", _path(out)], config, "phantom", progress, seed, keys)
        return cls.load(os.path.join(_path(out), "subject.json"))

    def __repr__(self):
        return f"Subject({self.path!r}, name={self.name!r}, labels={self.labels.shape})"


def _subject_path(subject):
    return subject.path if isinstance(subject, Subject) else _path(subject)


class Anatomy(_Outputs):
    """OUT/anatomy of `myotwin anatomy`: `motor_units` (motor_units.h5 as a dict of arrays),
    `summary` (anatomy.json)."""

    _folder = "anatomy"

    @functools.cached_property
    def motor_units(self):
        return _core.read_h5(self.file("motor_units.h5"))

    @functools.cached_property
    def summary(self):
        return _read_json(self.file("anatomy.json"))


class Mesh(_Outputs):
    """OUT/mesh of `myotwin mesh`: `nodes_m` (#nodes x 3 [m]), `tets` (#tets x 4, int64),
    `labels` (#tets, int32), `fibre_direction` (#tets x 3), `quality` (mesh_quality.json)."""

    _folder = "mesh"

    @functools.cached_property
    def _mesh(self):
        return _core.read_mesh(self.file("mesh.vtu"))

    nodes_m = property(lambda self: self._mesh["nodes_m"])
    tets = property(lambda self: self._mesh["tets"])
    labels = property(lambda self: self._mesh["labels"])
    fibre_direction = property(lambda self: self._mesh["fibre_direction"])

    @functools.cached_property
    def quality(self):
        return _read_json(self.file("mesh_quality.json"))


class LeadFields(_Outputs):
    """OUT/forward of `myotwin leadfield`: `electrodes` (electrodes.json), `report`
    (leadfield_report.json), `h5` (leadfields.h5 as a dict of arrays: lead fields [V/A] at the
    mesh nodes and, when the anatomy was there, at the fibre points)."""

    _folder = "forward"

    @functools.cached_property
    def electrodes(self):
        return _read_json(self.file("electrodes.json"))

    @functools.cached_property
    def report(self):
        return _read_json(self.file("leadfield_report.json"))

    @functools.cached_property
    def h5(self):
        return _core.read_h5(self.file("leadfields.h5"))


class Simulation(_Outputs):
    """OUT/forward of `myotwin simulate`: `emg_V` (#channels x #samples), `fs_Hz`,
    `grid_row_col`, `position_m`, `channel_names` (emg.h5 as read_emg() reads it), `truth` (the
    true discharges: `unit_id`, `discharges` as sample indices, `discharge_times_s`), `h5`
    (emg.h5 whole), `muaps` (muaps.h5), `report` (simulate_report.json).
    `to_openhdemg()` gives the truth in openhdemg's emgfile layout."""

    _folder = "forward"
    _emg_file = "emg.h5"
    _report_file = "simulate_report.json"

    @property
    def emg_path(self):
        """The path of the EMG file (what invert() and the command line read)."""
        return self.file(self._emg_file)

    @functools.cached_property
    def _emg(self):
        return _core.read_emg(self.emg_path)

    emg_V = property(lambda self: self._emg["emg"])
    fs_Hz = property(lambda self: self._emg["fs_Hz"])
    grid_row_col = property(lambda self: self._emg["grid_row_col"])
    position_m = property(lambda self: self._emg["position_m"])
    channel_names = property(lambda self: self._emg["channel_names"])

    @functools.cached_property
    def truth(self):
        t = _core.read_spike_trains(self.emg_path)
        t["discharge_times_s"] = [d / t["fs_Hz"] for d in t["discharges"]]
        return Decomposition(t)

    @functools.cached_property
    def h5(self):
        return _core.read_h5(self.emg_path)

    @functools.cached_property
    def muaps(self):
        return _core.read_h5(self.file("muaps.h5"))

    @functools.cached_property
    def report(self):
        return _read_json(self.file(self._report_file))

    def to_openhdemg(self, **options):
        """The true discharges with this EMG in openhdemg's emgfile layout (to_openhdemg())."""
        from ._results import to_openhdemg

        return to_openhdemg(self.truth, emg=self.emg_V, filename=self.emg_path, **options)


class Iemg(Simulation):
    """OUT/iemg of `myotwin iemg`: as Simulation, from iemg/emg.h5 (the first trajectory
    position; the others' files are in `folder`), with `report` (iemg_report.json) and
    `truth_h5` (truth.h5: exact discharge times, branch delays and jitter per unit)."""

    _folder = "iemg"
    _report_file = "iemg_report.json"

    @functools.cached_property
    def truth_h5(self):
        return _core.read_h5(self.file("truth.h5"))


class Inversion(_Outputs):
    """OUT/inversion of `myotwin invert`: `decomposition` (decomposition.h5 as
    read_decomposition() gives it), `properties` (properties.json: the fitted motor-unit
    properties), `summary` (summary.json)."""

    _folder = "inversion"

    @functools.cached_property
    def decomposition(self):
        from . import read_decomposition

        return read_decomposition(self.file("decomposition.h5"))

    @functools.cached_property
    def properties(self):
        return _read_json(self.file("properties.json"))

    @functools.cached_property
    def summary(self):
        return _read_json(self.file("summary.json"))

    @functools.cached_property
    def config(self):
        return _read_json(self.file("resolved_config.json"))

    def to_openhdemg(self, emg=None, **options):
        """The decomposition in openhdemg's emgfile layout (to_openhdemg())."""
        return self.decomposition.to_openhdemg(emg=emg, **options)


def anatomy(subject, out, config=None, *, seed=None, progress=None, **keys):
    """The muscles of `subject` (a Subject or the path of subject.json) as `myotwin anatomy
    SUBJECT -o OUT` builds them: writes OUT/anatomy/ and OUT/resolved_config.json. Keyword
    arguments are keys of the section `anatomy`. Returns an Anatomy."""
    _run(["anatomy", _subject_path(subject), "-o", _path(out)], config, "anatomy", progress,
         seed, keys)
    return Anatomy(out)


def mesh(subject, out, config=None, *, seed=None, anatomy=None, skin=True, progress=None,
         **keys):
    """The tetrahedral mesh of `subject` as `myotwin mesh SUBJECT -o OUT`: writes OUT/mesh/
    (fibre directions from OUT/anatomy when it is there, or from the folder `anatomy`). Keyword
    arguments are keys of the section `mesh`. Returns a Mesh."""
    args = ["mesh", _subject_path(subject), "-o", _path(out)]
    if anatomy is not None:
        args += ["--anatomy", anatomy.folder if isinstance(anatomy, Anatomy) else _path(anatomy)]
    if not skin:
        args.append("--no-skin")
    _run(args, config, "mesh", progress, seed, keys)
    return Mesh(out)


def lead_fields(subject, out, config=None, *, seed=None, cache=True, progress=None, **keys):
    """The electrodes and their lead fields as `myotwin leadfield SUBJECT -o OUT` (reads
    OUT/mesh, and OUT/anatomy for the fibre points; reuses OUT/forward/leadfields.h5 when its key
    matches unless `cache` is False). Keyword arguments are keys of the section
    `volume_conductor`; the electrodes are the config's section `electrodes`. Returns
    LeadFields."""
    args = ["leadfield", _subject_path(subject), "-o", _path(out)]
    if not cache:
        args.append("--no-cache")
    _run(args, config, "volume_conductor", progress, seed, keys)
    return LeadFields(out)


def simulate(subject, out, config=None, *, seed=None, mat=True, progress=None, **keys):
    """The EMG of the subject's motor units as `myotwin simulate SUBJECT -o OUT` (reads
    OUT/anatomy, OUT/mesh, OUT/forward/leadfields.h5 of the same `electrodes`): writes
    OUT/forward/muaps.h5, emg.h5, emg.mat (unless `mat` is False), montages.h5,
    simulate_report.json. Keyword arguments are keys of the section `simulate`. Returns a
    Simulation."""
    args = ["simulate", _subject_path(subject), "-o", _path(out)]
    if not mat:
        args.append("--no-mat")
    _run(args, config, "simulate", progress, seed, keys)
    return Simulation(out)


def iemg(out, config=None, *, seed=None, mat=True, progress=None, **keys):
    """Intramuscular EMG as `myotwin iemg -o OUT` from the config's sections `iemg` and
    `noise`: writes OUT/iemg/. Keyword arguments are keys of the section `iemg`. Returns an
    Iemg."""
    args = ["iemg", "-o", _path(out)]
    if not mat:
        args.append("--no-mat")
    _run(args, config, "iemg", progress, seed, keys)
    return Iemg(out)


def invert(emg, subject, out, config=None, *, fs_Hz=None, muscle=None, seed=None, progress=None,
           **keys):
    """Model-informed separation of the recording `emg` through the subject's forward model in
    OUT (anatomy, mesh, lead fields of the config's electrodes, in the electrodes' order), as
    `myotwin invert EMG --subject SUBJECT -o OUT`: writes OUT/inversion/. `emg`: a path, a
    Simulation (its emg.h5), or a #channels x #samples float64 array [V] sampled at `fs_Hz`
    (checked as decompose() checks it, then handed to the command as a temporary CSV file with
    every double exact). Keyword arguments are keys of the section `invert`. Returns an
    Inversion."""
    if isinstance(emg, Simulation):
        emg = emg.emg_path
    if isinstance(emg, (str, bytes, os.PathLike)):
        if fs_Hz is not None:
            raise ValueError("invert: fs_Hz is for an array `emg`; a file has its own rate")
        return _invert_file(_path(emg), subject, out, config, muscle, seed, progress, keys)
    if fs_Hz is None:
        raise ValueError("invert: fs_Hz [Hz]: required with an array `emg`")
    _core._check_emg(emg, float(fs_Hz))
    emg = np.asarray(emg)
    with tempfile.TemporaryDirectory(prefix="myotwin-invert-") as d:
        path = os.path.join(d, "emg.csv")
        header = (f"# fs_Hz = {float(fs_Hz):.17g}\n" +
                  ",".join(f"ch{c}" for c in range(emg.shape[0])))
        np.savetxt(path, emg.T, fmt="%.17g", delimiter=",", header=header, comments="")
        return _invert_file(path, subject, out, config, muscle, seed, progress, keys)


def _invert_file(path, subject, out, config, muscle, seed, progress, keys):
    args = ["invert", path, "--subject", _subject_path(subject), "-o", _path(out)]
    if muscle is not None:
        args += ["--muscle", str(muscle)]
    _run(args, config, "invert", progress, seed, keys)
    return Inversion(out)
