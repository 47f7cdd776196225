"""Training-set preparation: the labels table from the crossmatch, the seeded split, the
per-pixel standardisation. numpy/pandas only."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.spectra import CoaddSpectra, Spectra, preprocess

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


def assemble_training_set(coadd: CoaddSpectra, metadata: pd.DataFrame, labels: pd.DataFrame,
                          label_names: Sequence[str], preprocessing: dict[str, Any],
                          min_snr: float = 0.0,
                          min_good_pixel_fraction: float = 0.5) -> tuple[Spectra, dict]:
    """Preprocess the spectra of labelled stars and attach their labels.

    Keeps a stacked spectrum when its TARGETID has at least one valid label in ``labels``
    (a :func:`label_table`), its ``snr`` >= ``min_snr`` and its ``vrad_kms`` is usable; of
    several spectra of one TARGETID the highest-S/N one is kept. After preprocessing, spectra
    with fewer than ``min_good_pixel_fraction`` good pixels are dropped.

    Args:
        coadd: ``stacked_spectra``.
        metadata: ``spectra_metadata``, row-matched to ``coadd`` (TARGETID, vrad_kms, snr).

    Returns:
        (training spectra with meta TARGETID, snr, vrad_kms, rest_frame_ok,
        good_pixel_fraction, ``<label>``, ``<label>_err``; counts of what was kept/dropped).

    Raises:
        ValueError: when metadata is not row-matched to the coadd.
        KeyError: when metadata lacks TARGETID, vrad_kms or snr.
    """
    missing = [c for c in ("TARGETID", "vrad_kms", "snr") if c not in metadata.columns]
    if missing:
        raise KeyError(f"spectra_metadata lacks column(s) {missing}")
    if len(metadata) != coadd.n_spectra or not np.array_equal(
            metadata["TARGETID"].to_numpy(), coadd.fibermap["TARGETID"].to_numpy()):
        raise ValueError(
            f"spectra_metadata ({len(metadata)} rows) is not row-matched to stacked_spectra "
            f"({coadd.n_spectra} spectra): TARGETIDs differ")
    label_values = labels[list(label_names)].to_numpy(np.float64)
    labelled_ids = labels["TARGETID"].to_numpy()[np.isfinite(label_values).any(axis=1)]
    snr = metadata["snr"].to_numpy(np.float64)
    vrad = metadata["vrad_kms"].to_numpy(np.float64)
    has_label = np.isin(metadata["TARGETID"].to_numpy(), labelled_ids)
    bright = snr >= min_snr
    has_velocity = np.isfinite(vrad)
    candidate = np.flatnonzero(has_label & bright & has_velocity)
    # highest S/N first, then keep the first row of each TARGETID
    order = candidate[np.argsort(-snr[candidate], kind="stable")]
    _, first = np.unique(metadata["TARGETID"].to_numpy()[order], return_index=True)
    rows = np.sort(order[first])
    processed = preprocess(coadd.select(rows), vrad[rows], preprocessing)
    enough = processed.meta["good_pixel_fraction"].to_numpy() >= min_good_pixel_fraction
    enough &= processed.meta["rest_frame_ok"].to_numpy(bool)
    processed = processed.select(np.flatnonzero(enough))
    meta = processed.meta.copy()  # its snr is median_snr of the same spectra
    meta = meta[["TARGETID", "snr"] + [c for c in meta.columns if c not in ("TARGETID", "snr")]]
    columns = ["TARGETID"] + [c for n in label_names for c in (n, f"{n}_err")]
    meta = meta.merge(labels[columns], on="TARGETID", how="left", validate="one_to_one")
    meta.attrs = dict(processed.meta.attrs)
    counts = {
        "stacked_spectra": int(coadd.n_spectra),
        "with_label": int(has_label.sum()),
        "with_label_snr_velocity": int(candidate.size),
        "unique_targets": int(rows.size),
        "kept": int(enough.sum()),
    }
    return Spectra(wavelength=processed.wavelength, flux=processed.flux, ivar=processed.ivar,
                   mask=processed.mask, meta=meta), counts
