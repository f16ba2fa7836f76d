"""Decomposition results and their openhdemg layout (docs/python.md, "openhdemg")."""

import os

import numpy as np


class Decomposition(dict):
    """A decomposition as a dict (the keys decompose() documents) with `to_openhdemg()`."""

    def to_openhdemg(self, emg=None, **options):
        """This decomposition in openhdemg's emgfile layout; see myotwin.to_openhdemg()."""
        return to_openhdemg(self, emg=emg, **options)


def to_openhdemg(decomposition, emg=None, *, ied_mm=None, ref_signal=None, filename="myotwin",
                 emg_scale=1e3):
    """`decomposition` (what decompose(), read_decomposition() or a stage's `truth` give: at
    least `fs_Hz` and `discharges`) as openhdemg's emgfile dict, for openhdemg's analyses
    (openhdemg.library: compute_dr, plot_mupulses, ...):

    - "SOURCE": "CUSTOMCSV" (the layout openhdemg's own loaders give decompositions of other
      tools, so its functions accept it), "FILENAME": `filename`;
    - "RAW_SIGNAL": the EMG (`emg`, #channels x #samples [V], default the decomposition's
      `filtered` signal when it has one) as a samples x channels DataFrame, times `emg_scale`
      (default 1e3: mV, the unit openhdemg's MUAP plots label; 1.0 keeps volts);
    - "REF_SIGNAL": `ref_signal` (e.g. a force, #samples) as a one-column DataFrame, or empty;
    - "ACCURACY": the SIL per unit, a one-column DataFrame (one row per unit);
    - "IPTS": the sources (innervation pulse trains), samples x units DataFrame (zeros when the
      decomposition has none, as a truth);
    - "MUPULSES": a list of int64 arrays of sample indices;
    - "FSAMP": float [Hz], "IED": float [mm] (`ied_mm`, default the decomposition's when it
      has one, else 8.0), "EMG_LENGTH": int, "NUMBER_OF_MUS": int;
    - "BINARY_MUS_FIRING": samples x units DataFrame of 0 and 1;
    - "EXTRAS": a DataFrame of the per-unit values openhdemg has no key for (`pnr_dB`,
      `cov_isi`, `rate_pps`, ... when present).
    """
    import pandas as pd

    fs = float(decomposition["fs_Hz"])
    pulses = [np.asarray(d, dtype=np.int64) for d in decomposition["discharges"]]
    n_units = len(pulses)
    if emg is None:
        emg = decomposition.get("filtered")
    if emg is not None:
        emg = np.asarray(emg, dtype=np.float64)
        if emg.ndim != 2:
            raise ValueError(f"emg: shape {emg.shape}: expected 2 dimensions, "
                             "#channels x #samples")
    n_samples = int(decomposition.get("n_samples") or 0)
    if n_samples == 0:
        n_samples = emg.shape[1] if emg is not None else int(
            max((int(p.max()) + 1 for p in pulses if p.size), default=0))
    if emg is not None and emg.shape[1] != n_samples:
        raise ValueError(f"emg: {emg.shape[1]} samples, but the decomposition has "
                         f"{n_samples}: expected the recording it was made from")
    for u, p in enumerate(pulses):
        if p.size and (p.min() < 0 or p.max() >= n_samples):
            raise ValueError(f"discharges[{u}]: sample {int(p.min() if p.min() < 0 else p.max())}"
                             f" is outside the recording's 0 to {n_samples - 1}")

    raw = (pd.DataFrame(emg.T * emg_scale) if emg is not None else pd.DataFrame(columns=[0]))
    if ref_signal is not None:
        ref = np.asarray(ref_signal, dtype=np.float64).reshape(-1)
        if ref.size != n_samples:
            raise ValueError(f"ref_signal: {ref.size} samples: expected {n_samples}")
        ref_df = pd.DataFrame(ref)
    else:
        ref_df = pd.DataFrame(columns=[0])

    binary = np.zeros((n_samples, n_units), dtype=np.int64)
    for u, p in enumerate(pulses):
        binary[p, u] = 1
    sources = decomposition.get("sources")
    ipts = (np.asarray(sources, dtype=np.float64).T if sources is not None and
            np.size(sources) == n_units * n_samples else np.zeros((n_samples, n_units)))
    sil = decomposition.get("sil")
    accuracy = (np.asarray(sil, dtype=np.float64) if sil is not None and len(sil) == n_units
                else np.full(n_units, np.nan))
    extras = {}
    for key in ("pnr_dB", "cov_isi", "cov_isi_local", "rate_pps", "n_discharges", "unit_id"):
        value = decomposition.get(key)
        if value is not None and np.ndim(value) == 1 and len(value) == n_units:
            extras[key] = np.asarray(value)
    ied = ied_mm if ied_mm is not None else decomposition.get("ied_mm", 8.0)

    return {
        "SOURCE": "CUSTOMCSV",
        "FILENAME": os.path.basename(os.fspath(filename)),
        "RAW_SIGNAL": raw,
        "REF_SIGNAL": ref_df,
        "ACCURACY": pd.DataFrame(accuracy),
        "IPTS": pd.DataFrame(ipts),
        "MUPULSES": pulses,
        "FSAMP": fs,
        "IED": float(ied),
        "EMG_LENGTH": int(n_samples),
        "NUMBER_OF_MUS": int(n_units),
        "BINARY_MUS_FIRING": pd.DataFrame(binary),
        "EXTRAS": pd.DataFrame(extras) if extras else pd.DataFrame(columns=[0]),
    }
