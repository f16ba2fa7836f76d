"""Shared pieces of the pytest suite of the Python module (python/tests; docs/python.md).

ctest runs it with PYTHONPATH=build/python and MYOTWIN_EXE=build/bin/myotwin."""

import os
import pathlib
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest


def synthetic_emg(seed=7, n_channels=12, n_units=4, duration_s=3.0, fs_Hz=2048.0):
    """A convolutive mixture that the decomposition separates: `n_units` units firing at 9-14
    pps with Gaussian intervals of CoV 0.1, each with its own MUAP shape (a Hermite-Rico wave of
    1.5-3 ms scale) of random amplitude and delay on every channel, plus white noise at 3 % of
    the signal's RMS. Returns (emg #channels x #samples [V], fs_Hz, true discharges per unit)."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * fs_Hz)
    emg = np.zeros((n_channels, n))
    truth = []
    t = np.arange(64) - 32.0
    for u in range(n_units):
        rate = 9.0 + 5.0 * u / max(n_units - 1, 1)
        isi = rng.normal(1.0 / rate, 0.1 / rate, size=int(duration_s * rate) + 10)
        times = np.cumsum(isi) + rng.uniform(0.05, 0.1)
        spikes = np.round(times[times < duration_s - 0.05] * fs_Hz).astype(np.int64)
        truth.append(spikes)
        scale = (1.5 + 1.5 * u / max(n_units - 1, 1)) * 1e-3 * fs_Hz
        for c in range(n_channels):
            shift = rng.uniform(-4.0, 4.0)
            x = (t - shift) / scale
            muap = rng.uniform(-1.0, 1.0) * 1e-4 * (1.0 - 2.0 * x**2) * np.exp(-(x**2))
            train = np.zeros(n)
            train[spikes] = 1.0
            emg[c] += np.convolve(train, muap, mode="same")
    emg += 0.03 * np.sqrt(np.mean(emg**2)) * rng.standard_normal(emg.shape)
    return emg, fs_Hz, truth


# Parameters that keep the decomposition of synthetic_emg() well under a second.
FAST = {"extension_factor": 8}


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One thread (results do not depend on it; test_determinism_at_any_thread_count checks):
    on a loaded machine, the many short parallel loops of a small decomposition wait for
    descheduled threads (seconds at 2 threads where 1 thread takes milliseconds)."""
    import myotwin

    myotwin.set_threads(1)
    yield
    myotwin.set_threads(0)


@pytest.fixture(scope="session")
def emg_case():
    return synthetic_emg()


@pytest.fixture(scope="session")
def exe():
    path = os.environ.get("MYOTWIN_EXE") or shutil.which("myotwin")
    if not path:
        root = pathlib.Path(__file__).resolve().parents[2]
        candidate = root / "build" / "bin" / "myotwin"
        path = str(candidate) if candidate.exists() else None
    if not path:
        pytest.skip("the myotwin executable was not found (set MYOTWIN_EXE)")
    return path


def write_csv(path, emg, fs_Hz):
    """Writes `emg` as the text table `myotwin decompose` reads, every double exact (17
    significant digits)."""
    header = f"# fs_Hz = {fs_Hz:.17g}\n" + ",".join(f"ch{c}" for c in range(emg.shape[0]))
    np.savetxt(path, emg.T, fmt="%.17g", delimiter=",", header=header, comments="")


def run_cli(exe, *args):
    """Runs the executable with one thread, as the module runs here (conftest.one_thread)."""
    extra = ["--threads", "1"] if args[0] != "config" else []
    return subprocess.run([exe, *args, *extra], capture_output=True, text=True, timeout=300)


def cli_error(exe, *args):
    """The message of a command that must fail with exit code 2 (bad input)."""
    p = run_cli(exe, *args)
    assert p.returncode == 2, p.stdout + p.stderr
    return p.stderr.strip().splitlines()[-1]


def after_source(message, key):
    """The part of a message from the config key on (the source, a file name or `config`,
    differs)."""
    assert key in message, message
    return message[message.index(key):]


def main_thread_ticks_while(call):
    """Runs `call` in another thread and counts how often the main thread ran Python (1 ms
    sleeps) meanwhile: a call that held the GIL would let it through only at the interpreter's
    switch interval (5 ms), and not at all inside the library. Asserts the call finished."""
    done = threading.Event()
    worker = threading.Thread(target=lambda: (call(), done.set()))
    ticks = 0
    worker.start()
    while not done.is_set() and worker.is_alive():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert done.is_set()
    return ticks
