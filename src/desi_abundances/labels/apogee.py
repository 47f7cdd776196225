"""APOGEE DR17 allStar as a reference-label source: its quality cuts (ASPCAPFLAG, STARFLAG,
S/N, label ranges, VSCATTER, EXTRATARG duplicates) and its label columns. pandas/numpy only.

Bits are those of the SDSS DR17 data model (``constants.py``); temperatures in K, log g in dex,
velocities in km/s.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.constants import ALL_LABEL_COLUMNS, ASPCAPFLAG_STAR_BAD_BIT, EXTRATARG_DUPLICATE_BIT

DEFAULT_CUTS: dict[str, Any] = {
    "drop_duplicates": True,
    "aspcapflag_bad_bits": [ASPCAPFLAG_STAR_BAD_BIT],
    "starflag_bad_bits": [],
    "snr_min": None,
    "require_finite": ["TEFF", "LOGG", "FE_H"],
    "teff_range_k": None,
    "logg_range": None,
    "vscatter_max_kms": None,
}


class ApogeeTableError(ValueError):
    """An APOGEE table lacks a column a cut or the label list needs."""


def require_columns(table: pd.DataFrame, columns: list[str], where: str,
                    error: type[Exception] = ApogeeTableError) -> None:
    """Raise ``error`` (default :class:`ApogeeTableError`) naming ``where`` and the missing
    columns."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise error(f"{where} lacks column(s) {missing}")


def bits_set(values: pd.Series, bits: list[int]) -> np.ndarray:
    """True where any of ``bits`` is set in an integer bitmask column (missing = no bit)."""
    if not bits:
        return np.zeros(len(values), dtype=bool)
    mask = np.int64(sum(1 << int(bit) for bit in bits))
    ints = pd.Series(values).fillna(0).to_numpy().astype(np.int64)
    return (ints & mask) != 0


def is_duplicate(stars: pd.DataFrame) -> np.ndarray:
    """True for APOGEE rows flagged EXTRATARG DUPLICATE (bit 4): a lower-S/N copy of a star."""
    require_columns(stars, ["EXTRATARG"], "APOGEE table")
    return bits_set(stars["EXTRATARG"], [EXTRATARG_DUPLICATE_BIT])


def quality_cut_masks(stars: pd.DataFrame, cuts: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Each APOGEE quality cut as a boolean ``pass`` mask, in the order they are reported.

    Args:
        stars: allStar rows.
        cuts: ``aspcapflag_bad_bits`` and ``starflag_bad_bits`` (lists of bit numbers),
            ``snr_min``, ``require_finite`` (columns), ``teff_range_k`` ([min, max], K),
            ``logg_range`` ([min, max], dex), ``vscatter_max_kms`` (NaN VSCATTER, a single
            visit, passes); a null value disables a cut. Per-element X_FE_FLAG never drops a
            star: feature engineering masks that label only.
    """
    cuts = {**DEFAULT_CUTS, **dict(cuts)}
    masks: dict[str, np.ndarray] = {}
    if cuts["aspcapflag_bad_bits"]:
        require_columns(stars, ["ASPCAPFLAG"], "APOGEE table")
        masks["aspcapflag"] = ~bits_set(stars["ASPCAPFLAG"], list(cuts["aspcapflag_bad_bits"]))
    if cuts["starflag_bad_bits"]:
        require_columns(stars, ["STARFLAG"], "APOGEE table")
        masks["starflag"] = ~bits_set(stars["STARFLAG"], list(cuts["starflag_bad_bits"]))
    if cuts["snr_min"] is not None:
        require_columns(stars, ["SNR"], "APOGEE table")
        masks["snr_min"] = stars["SNR"].to_numpy(dtype=float) >= float(cuts["snr_min"])
    if cuts["require_finite"]:
        columns = list(cuts["require_finite"])
        require_columns(stars, columns, "APOGEE table")
        masks["finite_labels"] = np.isfinite(stars[columns].to_numpy(dtype=float)).all(axis=1)
    if cuts["teff_range_k"] is not None:
        low, high = cuts["teff_range_k"]
        teff = stars["TEFF"].to_numpy(dtype=float)
        masks["teff_range"] = (teff >= low) & (teff <= high)
    if cuts["logg_range"] is not None:
        low, high = cuts["logg_range"]
        logg = stars["LOGG"].to_numpy(dtype=float)
        masks["logg_range"] = (logg >= low) & (logg <= high)
    if cuts["vscatter_max_kms"] is not None:
        require_columns(stars, ["VSCATTER"], "APOGEE table")
        vscatter = stars["VSCATTER"].to_numpy(dtype=float)
        masks["vscatter_max"] = ~(vscatter > float(cuts["vscatter_max_kms"]))
    return masks


def sequential_counts(n_start: int, masks: Mapping[str, np.ndarray], start: str) -> list[dict[str, Any]]:
    """``[{"step": start, "remaining": n_start}, {"step": cut, "remaining": n}, ...]`` with the
    cuts applied one after the other."""
    counts = [{"step": start, "remaining": int(n_start)}]
    passing = np.ones(n_start, dtype=bool)
    for name, mask in masks.items():
        passing &= mask
        counts.append({"step": name, "remaining": int(passing.sum())})
    return counts


def passes_quality_cuts(stars: pd.DataFrame, cuts: Mapping[str, Any]) -> np.ndarray:
    """True for APOGEE rows that pass every quality cut and are not EXTRATARG duplicates
    (when ``drop_duplicates``)."""
    passing = np.ones(len(stars), dtype=bool)
    for mask in quality_cut_masks(stars, cuts).values():
        passing &= mask
    if {**DEFAULT_CUTS, **dict(cuts)}["drop_duplicates"]:
        passing &= ~is_duplicate(stars)
    return passing


def label_columns(stars: pd.DataFrame) -> list[str]:
    """The APOGEE label columns present, with errors and flags: TEFF, TEFF_ERR, LOGG,
    LOGG_ERR, FE_H, FE_H_ERR, FE_H_FLAG, then <X>_FE, <X>_FE_ERR, <X>_FE_FLAG."""
    require_columns(stars, ["TEFF", "LOGG", "FE_H"], "APOGEE table")
    columns = []
    for label in ALL_LABEL_COLUMNS:
        for column in (label, f"{label}_ERR", f"{label}_FLAG"):
            if column in stars.columns:
                columns.append(column)
    return columns
