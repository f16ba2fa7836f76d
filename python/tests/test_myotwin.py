"""The Python module against the command line: the same inputs and configuration give the same
bits; bad input raises the command line's messages (docs/python.md)."""

import json

import numpy as np
import pytest

import myotwin
from conftest import FAST, after_source, cli_error, main_thread_ticks_while, run_cli, write_csv


@pytest.fixture(scope="module")
def ours(emg_case):
    """The module's decomposition of the synthetic mixture with the FAST parameters."""
    emg, fs, _ = emg_case
    return myotwin.decompose(emg, fs, FAST)


# ---- Round trip against the command line


@pytest.fixture(scope="module")
def cli_decomposition(tmp_path_factory, exe, emg_case):
    emg, fs, _ = emg_case
    d = tmp_path_factory.mktemp("cli")
    write_csv(d / "emg.csv", emg, fs)
    (d / "run.json").write_text(json.dumps({"decompose": FAST}))
    p = run_cli(exe, "decompose", str(d / "emg.csv"), "-o", str(d / "out"), "--config",
                str(d / "run.json"), "--quiet")
    assert p.returncode == 0, p.stderr
    return d


def test_read_emg_gives_the_array_written(cli_decomposition, emg_case):
    emg, fs, _ = emg_case
    rec = myotwin.read_emg(cli_decomposition / "emg.csv")
    assert rec["fs_Hz"] == fs
    assert rec["emg"].shape == emg.shape
    assert np.array_equal(rec["emg"], emg)
    assert rec["channel_names"][:2] == ["ch0", "ch1"]


def test_decompose_matches_the_command_line_bit_for_bit(cli_decomposition, ours):
    theirs = myotwin.read_decomposition(cli_decomposition / "out/decomposition/decomposition.h5")
    assert len(ours["discharges"]) >= 2
    assert len(ours["discharges"]) == len(theirs["discharges"])
    for a, b in zip(ours["discharges"], theirs["discharges"]):
        assert a.dtype == np.int64 and np.array_equal(a, b)
    for key in ("sil", "pnr_dB", "cov_isi", "rate_pps", "n_discharges", "sources",
                "neural_drive_pps"):
        assert np.array_equal(ours[key], theirs[key]), key
    assert np.array_equal(ours["filters"], theirs["filters"])
    assert np.array_equal(ours["muaps"], theirs["muaps"])
    assert theirs["fs_Hz"] == ours["fs_Hz"] and theirs["n_samples"] == ours["n_samples"]
    # The resolved configuration is the one the command line wrote.
    resolved = json.loads(
        (cli_decomposition / "out/decomposition/resolved_config.json").read_text())
    assert ours["config"] == resolved["decompose"]
    # The search's counts are summary.json's (timings differ run to run).
    summary = json.loads((cli_decomposition / "out/decomposition/summary.json").read_text())
    assert ours["stats"]["candidates"] == summary["candidates"]
    assert ours["stats"]["n_whitened"] == summary["n_whitened"]
    assert set(ours["stats"]["time_s"]) <= set(summary["time_s"])  # the command adds "total"


def test_read_decomposition_of_the_mat_file_gives_the_same_discharges(cli_decomposition):
    out = cli_decomposition / "out/decomposition"
    h5 = myotwin.read_decomposition(out / "decomposition.h5")
    mat = myotwin.read_decomposition(out / "decomposition.mat")
    assert mat["fs_Hz"] == h5["fs_Hz"]
    assert len(mat["discharges"]) == len(h5["discharges"]) > 0
    for a, b in zip(mat["discharges"], h5["discharges"]):
        assert np.array_equal(a, b)


def test_config_file_and_keywords_as_on_the_command_line(cli_decomposition, emg_case, ours):
    emg, fs, _ = emg_case
    from_file = myotwin.decompose(emg, fs, cli_decomposition / "run.json")
    from_kwargs = myotwin.decompose(emg, fs, extension_factor=8)
    for other in (from_file, from_kwargs):
        assert len(other["discharges"]) == len(ours["discharges"])
        assert np.array_equal(other["sources"], ours["sources"])


def test_config_defaults_are_the_command_lines(exe):
    p = run_cli(exe, "config", "defaults")
    assert p.returncode == 0, p.stderr
    assert myotwin.config_defaults() == json.loads(p.stdout)
    assert myotwin.config_defaults(seed=5)["seed"] == 5


# ---- An array that was never a file


def test_decomposition_of_an_array_finds_the_true_units(emg_case, ours):
    emg, fs, truth = emg_case
    result = ours
    assert result["n_channels"] == emg.shape[0] and result["n_samples"] == emg.shape[1]
    assert result["sources"].shape == (len(result["discharges"]), emg.shape[1])
    for d, t in zip(result["discharges"], result["discharge_times_s"]):
        assert np.array_equal(t, d / fs)
    s = myotwin.score(result, {"fs_Hz": fs, "discharges": truth})
    assert s["matches"], s
    # Each unit of the mixture is found with nearly every discharge.
    assert len(s["matches"]) == len(truth)
    assert min(m["roa"] for m in s["matches"]) > 0.9
    assert s["roa"].shape == (len(result["discharges"]), len(truth))


def test_non_contiguous_arrays_are_copied(emg_case, ours):
    emg, fs, _ = emg_case
    a = ours
    fortran = np.asfortranarray(emg)
    padded = np.zeros((emg.shape[0] * 2, emg.shape[1]))
    padded[::2] = emg
    for other in (fortran, padded[::2]):
        b = myotwin.decompose(other, fs, FAST)
        assert len(a["discharges"]) == len(b["discharges"])
        for x, y in zip(a["discharges"], b["discharges"]):
            assert np.array_equal(x, y)
        assert np.array_equal(a["sources"], b["sources"])


def test_determinism_at_any_thread_count(emg_case, ours):
    emg, fs, _ = emg_case
    try:
        one = myotwin.decompose(emg, fs, FAST)
        myotwin.set_threads(2)
        two = myotwin.decompose(emg, fs, FAST)
    finally:
        myotwin.set_threads(1)
    for other in (two, ours):
        assert np.array_equal(one["sources"], other["sources"])
        assert np.array_equal(one["sil"], other["sil"])


def test_progress_reaches_the_callback(emg_case):
    emg, fs, _ = emg_case
    events = []
    myotwin.decompose(emg, fs, FAST, progress=lambda task, done, total: events.append(
        (task, done, total)))
    assert events and events[-1][1] == events[-1][2]
    assert all(task == "decompose" for task, _, _ in events)

    def fail(task, done, total):
        raise KeyError("stop")

    with pytest.raises(KeyError, match="stop"):
        myotwin.decompose(emg, fs, FAST, progress=fail)


# ---- Errors: the command line's messages


def test_wrong_dtype_is_a_value_error(emg_case):
    emg, fs, _ = emg_case
    with pytest.raises(ValueError, match=r"^emg: dtype float32: expected float64"):
        myotwin.decompose(emg.astype(np.float32), fs)
    with pytest.raises(ValueError, match=r"^emg: dtype int64: expected float64"):
        myotwin.decompose(np.zeros((2, 100), dtype=np.int64), fs)


def test_one_dimensional_array_is_a_value_error(emg_case):
    emg, fs, _ = emg_case
    with pytest.raises(ValueError, match=r"^emg: shape \(6144,\): expected 2 dimensions"):
        myotwin.decompose(emg[0], fs)


def test_nan_is_a_value_error(emg_case):
    emg, fs, _ = emg_case
    bad = emg.copy()
    bad[3, 17] = np.nan
    with pytest.raises(ValueError) as e:
        myotwin.decompose(bad, fs)
    assert str(e.value) == ("emg: channel 3 sample 17 = nan: every sample must be finite "
                            "(no NaN or Inf)")


def test_bad_rate_is_a_value_error(emg_case):
    emg, _, _ = emg_case
    with pytest.raises(ValueError, match=r"^emg: fs_Hz = -1: must be a finite number > 0"):
        myotwin.decompose(emg, -1.0)


def test_unknown_config_key_has_the_command_lines_message(tmp_path, exe, emg_case):
    emg, fs, _ = emg_case
    write_csv(tmp_path / "emg.csv", emg[:, :512], fs)
    (tmp_path / "run.json").write_text(json.dumps({"decompose": {"sil_treshold": 0.8}}))
    cli = cli_error(exe, "decompose", str(tmp_path / "emg.csv"), "-o", str(tmp_path / "out"),
                    "--config", str(tmp_path / "run.json"))
    with pytest.raises(ValueError) as e:
        myotwin.decompose(emg, fs, {"sil_treshold": 0.8})
    assert str(e.value).startswith("config: decompose.sil_treshold: unknown key")
    assert after_source(str(e.value), "decompose.") == after_source(cli, "decompose.")
    with pytest.raises(ValueError, match="decompose.sil_treshold: unknown key"):
        myotwin.decompose(emg, fs, sil_treshold=0.8)


def test_value_out_of_range_has_the_command_lines_message(tmp_path, exe, emg_case):
    emg, fs, _ = emg_case
    write_csv(tmp_path / "emg.csv", emg[:, :512], fs)
    cli = cli_error(exe, "decompose", str(tmp_path / "emg.csv"), "-o", str(tmp_path / "out"),
                    "--sil-threshold", "2")
    with pytest.raises(ValueError) as e:
        myotwin.decompose(emg, fs, sil_threshold=2)
    assert after_source(str(e.value), "decompose.") == after_source(cli, "decompose.")


def test_config_that_is_no_dict_is_a_value_error(emg_case):
    emg, fs, _ = emg_case
    with pytest.raises(ValueError, match="expected a dict"):
        myotwin.decompose(emg, fs, 3)


def test_missing_files_are_os_errors(tmp_path):
    with pytest.raises(OSError, match="nothing.h5"):
        myotwin.read_emg(tmp_path / "nothing.h5")
    with pytest.raises(OSError, match="nothing.h5"):
        myotwin.read_decomposition(tmp_path / "nothing.h5")
    with pytest.raises(OSError, match="nothing.json"):
        myotwin.decompose(np.zeros((1, 10)), 100.0, str(tmp_path / "nothing.json"))


# ---- Readers of HDF5 files


def test_read_emg_of_an_h5_file_gives_its_dataset(tmp_path, exe):
    p = run_cli(exe, "noise", "generate", "-o", str(tmp_path / "noise.h5"), "--fs-Hz", "1000",
                "--duration-s", "0.5", "--n-channels", "3", "--quiet")
    assert p.returncode == 0, p.stderr
    rec = myotwin.read_emg(tmp_path / "noise.h5")
    tree = myotwin.read_h5(tmp_path / "noise.h5")
    assert rec["fs_Hz"] == 1000.0
    assert rec["emg"].shape == (3, 500)
    assert tree["noise"].dtype == np.float64 and np.array_equal(rec["emg"], tree["noise"])
    assert 0.0 < np.std(rec["emg"]) < 1.0
    # The module decomposes what it read, as `myotwin decompose noise.h5` would.
    result = myotwin.decompose(rec["emg"], rec["fs_Hz"], extension_factor=4)
    assert result["n_channels"] == 3


def test_score_matches_the_command_line(cli_decomposition, exe):
    dec = cli_decomposition / "out/decomposition/decomposition.h5"
    p = run_cli(exe, "score", str(dec), str(dec), "-o", str(cli_decomposition / "score"),
                "--tolerance-ms", "1", "--quiet")
    assert p.returncode == 0, p.stderr
    theirs = json.loads((cli_decomposition / "score/score.json").read_text())
    ours = myotwin.score(myotwin.read_decomposition(dec), myotwin.read_spike_trains(dec),
                         tolerance_ms=1)
    assert ours["n_matched"] == ours["n_decomposed"] == len(myotwin.read_spike_trains(dec)[
        "discharges"]) > 0
    assert np.array_equal(np.diag(ours["roa"]), np.ones(ours["n_decomposed"]))
    for key in set(theirs) - {"decomposition", "truth", "roa"}:
        assert ours[key] == theirs[key], key
    with pytest.raises(ValueError, match="score.tolerance_ms = -1"):
        myotwin.score(ours, ours, tolerance_ms=-1)


def test_resolved_config_of_a_run_reproduces_it(cli_decomposition, emg_case, ours):
    emg, fs, _ = emg_case
    again = myotwin.decompose(emg, fs,
                              cli_decomposition / "out/decomposition/resolved_config.json")
    assert np.array_equal(again["sources"], ours["sources"])


def test_the_gil_is_released_while_decomposing(emg_case):
    emg, fs, _ = emg_case
    assert main_thread_ticks_while(lambda: myotwin.decompose(emg, fs, FAST)) > 20


def test_memory_estimate_refuses_before_allocating(tmp_path, exe, emg_case):
    emg, fs, _ = emg_case
    write_csv(tmp_path / "emg.csv", emg, fs)
    cli = cli_error(exe, "decompose", str(tmp_path / "emg.csv"), "-o", str(tmp_path / "out"),
                    "--max-memory-GiB", "0.001")
    try:
        myotwin.set_max_memory_GiB(0.001)
        with pytest.raises(ValueError) as e:
            myotwin.decompose(emg, fs)
    finally:
        myotwin.set_max_memory_GiB(None)
    assert str(e.value) == cli.removeprefix("error: ")
    assert str(e.value).startswith("decompose needs about")
    with pytest.raises(ValueError, match="set_max_memory_GiB: 0: expected"):
        myotwin.set_max_memory_GiB(0)


ONE_TET_VTU = """<?xml version="1.0"?>
<VTKFile type="UnstructuredGrid" version="0.1" byte_order="LittleEndian">
 <UnstructuredGrid>
  <Piece NumberOfPoints="5" NumberOfCells="2">
   <Points>
    <DataArray type="Float64" NumberOfComponents="3" format="ascii">
     0 0 0  0.01 0 0  0 0.01 0  0 0 0.01  0.01 0.01 0.01
    </DataArray>
   </Points>
   <Cells>
    <DataArray type="Int64" Name="connectivity" format="ascii">0 1 2 3  2 1 3 4</DataArray>
    <DataArray type="Int64" Name="offsets" format="ascii">4 8</DataArray>
    <DataArray type="UInt8" Name="types" format="ascii">10 10</DataArray>
   </Cells>
   <CellData>
    <DataArray type="Int32" Name="tissue_label" format="ascii">7 3</DataArray>
   </CellData>
  </Piece>
 </UnstructuredGrid>
</VTKFile>
"""


def test_read_mesh_of_a_hand_written_vtu(tmp_path):
    (tmp_path / "mesh.vtu").write_text(ONE_TET_VTU)
    mesh = myotwin.read_mesh(tmp_path / "mesh.vtu")
    assert mesh["nodes_m"].shape == (5, 3) and mesh["nodes_m"][4, 2] == 0.01
    assert mesh["tets"].shape == (2, 4) and mesh["tets"].dtype == np.int64
    assert list(mesh["labels"]) == [7, 3]
    assert np.array_equal(mesh["fibre_direction"], np.zeros((2, 3)))
    # Both tets come back with positive volume (the second is given left-handed).
    for tet in mesh["tets"]:
        a, b, c, d = mesh["nodes_m"][tet]
        assert np.linalg.det(np.array([b - a, c - a, d - a])) / 6 > 0
    with pytest.raises(OSError, match="nothing.vtu"):
        myotwin.read_mesh(tmp_path / "nothing.vtu")
