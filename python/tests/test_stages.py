"""The stage functions against the command line on a small phantom (docs/python.md, "Stages"):
the same configuration gives the same arrays, bit for bit; progress, Ctrl-C, determinism, the
error mapping and the openhdemg layout."""

import json
import os
import shutil
import signal

import numpy as np
import pytest

import myotwin
from conftest import after_source, cli_error, main_thread_ticks_while, run_cli

# A forearm phantom 40 mm long with one muscle of 10 units, a coarse mesh and a 2 x 4 grid: the
# whole chain runs in ~25 s on one loaded core (anatomy 3 s, mesh 10 s, lead fields 6 s,
# simulate 4 s; invert with a tiny search 14 s).
SMALL = {
    "phantom": {"length_mm": 40, "voxel_inplane_mm": 0.75, "voxel_axial_mm": 2.0,
                "elbow_depth_mm": 40, "elbow_width_mm": 45, "wrist_depth_mm": 35,
                "wrist_width_mm": 40},
    "anatomy": {"muscles": ["ED"], "fibres": {"model_density_per_mm2": 0.3},
                "motor_units": {"n_units": 10}, "fibre_field": {"tolerance": 1e-5}},
    "mesh": {"cell_size_mm": {"muscle": 6, "fat": 4, "skin": 2, "bone": 8, "tendon": 6,
                              "other": 8},
             "perturb": False, "exude": False},
    "electrodes": {"grids": [{"name": "g", "rows": 2, "columns": 4, "ied_mm": 8,
                              "muscle": "ED", "radius_mm": 3}],
                   "reference": "g[0,0]"},
    "simulate": {"muscles": ["ED"], "max_units_per_muscle": 10, "drive": {"duration_s": 1.5}},
    "decompose": {"extension_factor": 16},
    "invert": {"n_iterations": 1, "n_probe": 50, "n_refine": 2, "nelder_mead_evaluations": 12,
               "n_fit_probe": 20},
}

# The needle run of tests/apps/test_cli_iemg.cpp: a cylinder, 3 units, 4 contacts, 2 positions.
IEMG = {
    "seed": 7,
    "iemg": {"cylinder": {"radius_mm": 3.0, "length_mm": 60.0, "motor_units": {"n_units": 10}},
             "units": [0, 2, 5],
             "needle": {"n_contacts": 4, "spacing_mm": 1.0, "position_mm": [0.5, 0.0, 12.0],
                        "differentiation": "reference", "reference_contact": 3,
                        "trajectory": {"n_positions": 2, "step_mm": 0.5}},
             "drive": {"duration_s": 1.0, "profile": {"type": "constant", "level": 0.2}}},
    "noise": {"type": "gaussian", "snr_dB": 15.0},
}


class Chain:
    pass


@pytest.fixture(scope="module")
def chain(tmp_path_factory, exe):
    """The chain phantom -> anatomy -> mesh -> lead fields -> simulate -> invert run by the
    module (out `py`) and by the executable (out `cli`) on the module's subject."""
    c = Chain()
    d = tmp_path_factory.mktemp("chain")
    c.dir = d
    c.config_file = d / "small.json"
    c.config_file.write_text(json.dumps(SMALL))
    c.events = []
    c.subject = myotwin.Subject.phantom(d / "subject", SMALL, seed=3)
    c.py = d / "py"
    c.anatomy = myotwin.anatomy(c.subject, c.py, SMALL,
                                progress=lambda *e: c.events.append(e))
    c.mesh = myotwin.mesh(c.subject, c.py, c.config_file)  # a run configuration file
    c.lead_fields = myotwin.lead_fields(c.subject, c.py, SMALL)
    c.simulation = myotwin.simulate(c.subject, c.py, SMALL)
    c.inversion = myotwin.invert(c.simulation, c.subject, c.py, SMALL)

    c.cli = d / "cli"
    config = ["--config", str(c.config_file), "--quiet"]
    for args in (["phantom", "-o", str(d / "cli_subject"), "--seed", "3"],
                 ["anatomy", c.subject.path, "-o", str(c.cli)],
                 ["mesh", c.subject.path, "-o", str(c.cli)],
                 ["leadfield", c.subject.path, "-o", str(c.cli)],
                 ["simulate", c.subject.path, "-o", str(c.cli)],
                 ["invert", str(c.cli / "forward/emg.h5"), "--subject", c.subject.path, "-o",
                  str(c.cli)]):
        p = run_cli(exe, *args, *config)
        assert p.returncode == 0, " ".join(args) + "\n" + p.stderr
    return c


def assert_same_tree(a, b, where):
    """Every array of the dicts `a` and `b` (read_h5() trees) equal, bit for bit."""
    assert sorted(a) == sorted(b), where
    for key in a:
        if isinstance(a[key], dict):
            assert_same_tree(a[key], b[key], where + "/" + key)
        elif isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype, where + "/" + key
            assert a[key].shape == b[key].shape, where + "/" + key
            assert a[key].tobytes() == b[key].tobytes(), where + "/" + key  # NaN too


# ---- Round trips against the command line


def test_phantom_is_the_command_lines(chain):
    theirs = myotwin.Subject.load(chain.dir / "cli_subject/subject.json")
    ours = chain.subject
    assert ours.labels.dtype == np.int32 and ours.labels.ndim == 3
    assert ours.labels.flags.f_contiguous  # the file's memory, [i, j, k]
    assert np.array_equal(ours.labels, theirs.labels)
    assert np.array_equal(ours.spacing_m, theirs.spacing_m)
    assert np.array_equal(ours.origin_m, theirs.origin_m)
    assert ours.tissues == theirs.tissues
    assert ours.spacing_m[0] == pytest.approx(0.75e-3) and ours.spacing_m[2] == 2e-3
    assert "ED" in {t["name"] for t in ours.tissues}


@pytest.mark.parametrize("stage,files", [
    ("anatomy", ["motor_units.h5"]),
    ("forward", ["leadfields.h5", "emg.h5", "muaps.h5"]),
    ("inversion", ["decomposition.h5", "properties.h5"]),
])
def test_stage_files_are_the_command_lines_bit_for_bit(chain, stage, files):
    for name in files:
        ours = myotwin.read_h5(chain.py / stage / name)
        theirs = myotwin.read_h5(chain.cli / stage / name)
        assert_same_tree(ours, theirs, f"{stage}/{name}")


def test_mesh_is_the_command_lines_bit_for_bit(chain):
    theirs = myotwin.read_mesh(chain.cli / "mesh/mesh.vtu")
    for key in ("nodes_m", "tets", "labels", "fibre_direction"):
        assert np.array_equal(getattr(chain.mesh, key), theirs[key]), key
    assert chain.mesh.tets.shape[1] == 4 and chain.mesh.nodes_m.shape[1] == 3
    assert chain.mesh.quality["n_tets"] == chain.mesh.tets.shape[0]


def test_resolved_configuration_is_the_command_lines(chain):
    ours = chain.simulation.config
    theirs = json.loads((chain.cli / "resolved_config.json").read_text())
    ours.pop("threads"), theirs.pop("threads")  # --threads 1 on the command line
    assert ours == theirs
    assert ours["simulate"]["max_units_per_muscle"] == 10


def test_results_are_arrays_with_units_in_their_names(chain):
    sim = chain.simulation
    assert sim.emg_V.dtype == np.float64 and sim.emg_V.shape[0] == 8
    assert sim.emg_V.shape[1] == round(1.5 * sim.fs_Hz)
    assert not sim.emg_V.flags.owndata  # the library's memory, no copy
    assert sim.grid_row_col.shape == (8, 2)
    truth = sim.truth
    assert len(truth["discharges"]) == sim.report["n_units"]
    for d, t in zip(truth["discharges"], truth["discharge_times_s"]):
        assert d.dtype == np.int64 and np.array_equal(t, d / sim.fs_Hz)
    assert chain.lead_fields.report["n_electrodes"] == 8
    assert len(chain.lead_fields.electrodes["electrodes"]) == 8
    units = chain.anatomy.motor_units
    assert units and chain.anatomy.summary
    inv = chain.inversion
    assert inv.decomposition["fs_Hz"] == sim.fs_Hz
    assert len(inv.properties["units"]) == len(inv.decomposition["discharges"])


def test_invert_of_an_array_is_invert_of_its_file(chain, tmp_path):
    """The simulated EMG as an array (never a file of the caller's) gives the inversion of its
    emg.h5, bit for bit."""
    sim = chain.simulation
    for stage in ("anatomy", "mesh", "forward"):  # the forward model, not the chain's inversion
        shutil.copytree(chain.py / stage, tmp_path / stage)
    ours = myotwin.invert(sim.emg_V.copy(), chain.subject, tmp_path, SMALL, fs_Hz=sim.fs_Hz)
    theirs = myotwin.read_h5(chain.cli / "inversion/decomposition.h5")
    mine = myotwin.read_h5(ours.file("decomposition.h5"))
    assert_same_tree(mine["units"], theirs["units"], "units")
    assert mine["neural_drive_pps"].tobytes() == theirs["neural_drive_pps"].tobytes()
    assert mine["n_units"] == theirs["n_units"]
    with pytest.raises(ValueError, match="fs_Hz"):
        myotwin.invert(sim.emg_V, chain.subject, tmp_path)
    with pytest.raises(ValueError, match="dtype float32"):
        myotwin.invert(sim.emg_V.astype(np.float32), chain.subject, tmp_path, fs_Hz=sim.fs_Hz)


def test_progress_reaches_the_callback(chain):
    assert chain.events, "no progress event"
    for task, done, total in chain.events:
        assert isinstance(task, str) and 0 <= done <= total
    assert any(done == total for _, done, total in chain.events)


def test_same_configuration_same_bits_at_any_thread_count(chain, tmp_path):
    assert myotwin.get_threads() == 1  # conftest.one_thread
    again = myotwin.anatomy(chain.subject, tmp_path, SMALL, threads=2)
    assert myotwin.get_threads() == 1  # `threads` is for that call only
    assert again.config["threads"] == 2
    assert_same_tree(again.motor_units, chain.anatomy.motor_units, "anatomy")


def test_iemg_is_the_command_lines(tmp_path, exe):
    (tmp_path / "iemg.json").write_text(json.dumps(IEMG))
    p = run_cli(exe, "iemg", str(tmp_path / "iemg.json"), "-o", str(tmp_path / "cli"), "--quiet")
    assert p.returncode == 0, p.stderr
    ours = myotwin.iemg(tmp_path / "py", IEMG)
    for name in ("emg.h5", "muaps.h5", "truth.h5"):
        assert_same_tree(myotwin.read_h5(tmp_path / "py/iemg" / name),
                         myotwin.read_h5(tmp_path / "cli/iemg" / name), name)
    assert ours.emg_V.shape[0] == 3 and ours.fs_Hz == 10240.0  # 4 contacts against the last
    assert ours.report["n_units_simulated"] == 3
    assert len(ours.truth["discharges"]) == 3
    assert np.array_equal(ours.truth_h5["unit_id"], [0, 2, 5])


def test_the_gil_is_released_while_a_stage_runs(chain, tmp_path):
    assert main_thread_ticks_while(
        lambda: myotwin.anatomy(chain.subject, tmp_path, SMALL, threads=1)) > 20


# ---- Ctrl-C


def test_ctrl_c_stops_the_stage(chain, tmp_path):
    """SIGINT during the anatomy (as Ctrl-C sends it) raises KeyboardInterrupt at the next
    progress event, before anything is written."""
    def interrupt(task, done, total):
        signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        myotwin.anatomy(chain.subject, tmp_path, SMALL, progress=interrupt)
    assert not (tmp_path / "anatomy/motor_units.h5").exists()
    # The module still works afterwards.
    assert myotwin.Subject.load(chain.subject.path).name == chain.subject.name


# ---- Errors


def test_missing_subject_is_an_os_error_with_the_command_lines_message(tmp_path, exe):
    missing = str(tmp_path / "none/subject.json")
    cli = cli_error(exe, "anatomy", missing, "-o", str(tmp_path / "out"))
    with pytest.raises(OSError) as e:
        myotwin.Subject.load(missing)
    assert "error: " + str(e.value) == cli
    with pytest.raises(OSError) as e:
        myotwin.anatomy(missing, tmp_path / "out")
    assert "error: " + str(e.value) == cli


def test_a_stage_before_its_inputs_names_the_command_to_run(chain, tmp_path, exe):
    cli = cli_error(exe, "simulate", chain.subject.path, "-o", str(tmp_path))
    with pytest.raises(OSError) as e:
        myotwin.simulate(chain.subject, tmp_path)
    assert "error: " + str(e.value) == cli
    assert "first" in cli


def test_unknown_key_has_the_command_lines_message(chain, tmp_path, exe):
    (tmp_path / "bad.json").write_text(json.dumps({"anatomy": {"musclez": ["ED"]}}))
    cli = cli_error(exe, "anatomy", chain.subject.path, "-o", str(tmp_path / "o"), "--config",
                    str(tmp_path / "bad.json"))
    with pytest.raises(ValueError) as e:
        myotwin.anatomy(chain.subject, tmp_path / "o", {"anatomy": {"musclez": ["ED"]}})
    assert after_source(str(e.value), "anatomy.") == after_source(cli, "anatomy.")
    with pytest.raises(ValueError) as e:  # the same as a keyword
        myotwin.anatomy(chain.subject, tmp_path / "o", musclez=["ED"])
    assert after_source(str(e.value), "anatomy.") == after_source(cli, "anatomy.")
    assert not (tmp_path / "o/anatomy").exists()


def test_value_out_of_range_has_the_command_lines_message(chain, tmp_path, exe):
    bad = {"simulate": {"max_units_per_muscle": -4}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    cli = cli_error(exe, "simulate", chain.subject.path, "-o", str(tmp_path), "--config",
                    str(tmp_path / "bad.json"))
    with pytest.raises(ValueError) as e:
        myotwin.simulate(chain.subject, tmp_path, bad)
    assert after_source(str(e.value), "simulate.") == after_source(cli, "simulate.")
    with pytest.raises(ValueError, match="simulate.max_units_per_muscle"):
        myotwin.simulate(chain.subject, tmp_path, max_units_per_muscle=-4)


def test_config_of_the_wrong_type_is_a_value_error(chain, tmp_path):
    with pytest.raises(ValueError, match="expected a dict of a run configuration"):
        myotwin.anatomy(chain.subject, tmp_path, [1, 2])
    with pytest.raises(OSError):
        myotwin.anatomy(chain.subject, tmp_path, str(tmp_path / "none.json"))


# ---- openhdemg


def check_openhdemg_layout(emgfile, n_units, n_samples, n_channels):
    import pandas as pd

    assert set(emgfile) == {"SOURCE", "FILENAME", "RAW_SIGNAL", "REF_SIGNAL", "ACCURACY", "IPTS",
                            "MUPULSES", "FSAMP", "IED", "EMG_LENGTH", "NUMBER_OF_MUS",
                            "BINARY_MUS_FIRING", "EXTRAS"}
    assert isinstance(emgfile["SOURCE"], str) and isinstance(emgfile["FILENAME"], str)
    for key in ("RAW_SIGNAL", "REF_SIGNAL", "ACCURACY", "IPTS", "BINARY_MUS_FIRING", "EXTRAS"):
        assert isinstance(emgfile[key], pd.DataFrame), key
    assert emgfile["RAW_SIGNAL"].shape == (n_samples, n_channels)
    assert emgfile["IPTS"].shape == (n_samples, n_units)
    assert emgfile["BINARY_MUS_FIRING"].shape == (n_samples, n_units)
    assert emgfile["ACCURACY"].shape == (n_units, 1)
    assert isinstance(emgfile["FSAMP"], float) and isinstance(emgfile["IED"], float)
    assert isinstance(emgfile["EMG_LENGTH"], int) and emgfile["EMG_LENGTH"] == n_samples
    assert isinstance(emgfile["NUMBER_OF_MUS"], int) and emgfile["NUMBER_OF_MUS"] == n_units
    assert isinstance(emgfile["MUPULSES"], list) and len(emgfile["MUPULSES"]) == n_units
    binary = emgfile["BINARY_MUS_FIRING"].to_numpy()
    assert set(np.unique(binary)) <= {0, 1}
    for u, pulses in enumerate(emgfile["MUPULSES"]):
        assert pulses.dtype == np.int64
        assert np.array_equal(np.flatnonzero(binary[:, u]), pulses)


def test_decomposition_in_the_openhdemg_layout(chain):
    sim = chain.simulation
    result = myotwin.decompose(sim.emg_V, sim.fs_Hz, SMALL["decompose"])
    emgfile = result.to_openhdemg(emg=sim.emg_V, ied_mm=8.0, ref_signal=np.zeros(
        sim.emg_V.shape[1]))
    n_units = len(result["discharges"])
    check_openhdemg_layout(emgfile, n_units, sim.emg_V.shape[1], 8)
    assert emgfile["FSAMP"] == sim.fs_Hz and emgfile["IED"] == 8.0
    assert np.array_equal(emgfile["RAW_SIGNAL"].to_numpy(), sim.emg_V.T * 1e3)  # mV
    assert np.array_equal(emgfile["IPTS"].to_numpy(), result["sources"].T)
    assert np.array_equal(emgfile["ACCURACY"][0].to_numpy(), result["sil"])
    assert emgfile["REF_SIGNAL"].shape == (sim.emg_V.shape[1], 1)
    assert list(emgfile["EXTRAS"].columns)[:2] == ["pnr_dB", "cov_isi"]


def test_truth_and_inversion_in_the_openhdemg_layout(chain):
    sim = chain.simulation
    truth = sim.to_openhdemg()
    check_openhdemg_layout(truth, len(sim.truth["discharges"]), sim.emg_V.shape[1], 8)
    inv = chain.inversion.to_openhdemg(emg=sim.emg_V)
    check_openhdemg_layout(inv, len(chain.inversion.decomposition["discharges"]),
                           sim.emg_V.shape[1], 8)
    with pytest.raises(ValueError, match="samples"):
        chain.inversion.to_openhdemg(emg=sim.emg_V[:, :100])


def test_subject_files_are_where_the_subject_says(chain):
    assert os.path.isfile(chain.subject.labels_file)
    assert os.path.isfile(chain.subject.tissues_file)
