"""Training-set preparation: the labels table from the crossmatch, the seeded split, the
per-pixel standardisation. numpy/pandas only."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from desi_abundances.spectra import Spectra

APOGEE_MISSING = -9000.0
"""APOGEE writes -9999 for missing values: anything at or below this is missing."""

SPLITS = ("train", "validation", "test")


def label_table(crossmatch: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Per-star labels in python names from the APOGEE columns of the crossmatch.

    For every label (python name, e.g. ``mg_fe``; APOGEE column ``MG_FE``) the output holds
    ``<label>`` and ``<label>_err``. A label is NaN when its value is missing (NaN or <= -9000),
    its flag column ``<COLUMN>_FLAG`` (when present: FE_H_FLAG, <X>_FE_FLAG) is non-zero, or
    its error is not finite and positive; ``<label>_err`` is NaN exactly where the label is.
    Rows are unique in TARGETID: for duplicates the smallest ``sep_arcsec`` (else the first)
    is kept.

    Raises:
        KeyError: naming the crossmatch columns a label needs but that are absent.
    """
    needed = ["TARGETID"] + [c for label in labels for c in (label.upper(), f"{label.upper()}_ERR")]
    missing = [column for column in needed if column not in crossmatch.columns]
    if missing:
        raise KeyError(f"crossmatch lacks column(s) {missing} needed for params:labels")
    table = crossmatch
    if table["TARGETID"].duplicated().any():
        if "sep_arcsec" in table.columns:
            table = table.sort_values("sep_arcsec", kind="stable")
        table = table.drop_duplicates("TARGETID", keep="first")
    out = {"TARGETID": table["TARGETID"].to_numpy(np.int64)}
    for label in labels:
        column = label.upper()
        value = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float64)
        error = pd.to_numeric(table[f"{column}_ERR"], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(value) | (value <= APOGEE_MISSING) | ~np.isfinite(error) | (error <= 0)
        flag_column = f"{column}_FLAG"
        if flag_column in table.columns:
            flag = pd.to_numeric(table[flag_column], errors="coerce").to_numpy(np.float64)
            bad |= ~(flag == 0)
        out[label] = np.where(bad, np.nan, value)
        out[f"{label}_err"] = np.where(bad, np.nan, error)
    return pd.DataFrame(out).reset_index(drop=True)


def split_targets(target_ids: np.ndarray, fractions: dict[str, float], seed: int) -> pd.DataFrame:
    """Seeded random split of unique TARGETIDs into train / validation / test.

    Args:
        target_ids: TARGETIDs (duplicates are collapsed).
        fractions: ``{"train": 0.7, "validation": 0.15, "test": 0.15}`` (normalised to 1).
        seed: seed of the permutation.

    Returns:
        DataFrame TARGETID, split (sorted by TARGETID, so the result does not depend on the
        input order).
    """
    if set(fractions) != set(SPLITS):
        raise ValueError(f"split fractions must name exactly {SPLITS}, got {sorted(fractions)}")
    weights = np.array([float(fractions[name]) for name in SPLITS])
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"split fractions must be >= 0 with a positive sum, got {fractions}")
    ids = np.unique(np.asarray(target_ids, np.int64))
    order = np.random.default_rng(seed).permutation(ids.size)
    bounds = np.round(np.cumsum(weights / weights.sum()) * ids.size).astype(int)
    split = np.empty(ids.size, dtype=object)
    start = 0
    for name, stop in zip(SPLITS, bounds):
        split[order[start:stop]] = name
        start = stop
    return pd.DataFrame({"TARGETID": ids, "split": split.astype(str)})


def fit_pixel_standardisation(spectra: Spectra, min_iqr: float = 1e-3) -> pd.DataFrame:
    """Per-pixel median and interquartile range of the normalised flux over good pixels.

    Fit it on the training split only. Pixels with no good value get median 1 and iqr 1;
    the IQR is floored at ``min_iqr`` so no input is divided by ~0.

    Returns:
        DataFrame wavelength (Angstrom), median, iqr, n_good.
    """
    n_good = (~spectra.mask).sum(axis=0)
    ordered = np.sort(np.where(spectra.mask, np.inf, spectra.flux), axis=0)  # masked last
    q25, median, q75 = (_sorted_quantile(ordered, n_good, q) for q in (0.25, 0.5, 0.75))
    empty = n_good == 0
    median = np.where(empty, 1.0, median)
    iqr = np.where(empty, 1.0, np.maximum(q75 - q25, min_iqr))
    return pd.DataFrame({
        "wavelength": spectra.wavelength,
        "median": median.astype(np.float32),
        "iqr": iqr.astype(np.float32),
        "n_good": n_good.astype(np.int64),
    })


def _sorted_quantile(ordered: np.ndarray, n_good: np.ndarray, quantile: float) -> np.ndarray:
    """Per-column quantile (linear interpolation, as numpy's default) of the first
    ``n_good`` values of each column of the column-sorted ``ordered``."""
    last = np.maximum(n_good - 1, 0)
    position = quantile * last
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, last)
    below = np.take_along_axis(ordered, low[None, :], axis=0)[0]
    above = np.take_along_axis(ordered, high[None, :], axis=0)[0]
    with np.errstate(invalid="ignore"):
        result = below + (position - low) * (above - below)
    return np.where(n_good > 0, result, np.nan)
