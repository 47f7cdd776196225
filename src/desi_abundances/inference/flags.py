"""The quality flags of each predicted spectrum (``flag``, ``FLAG`` in the catalogue; 0 = no
known problem) and the per-label range bits (``label_range_flag``).

====  ======================  ==============================================================
bit   name                    set when
====  ======================  ==============================================================
0     LOW_SNR                 median S/N per pixel (``snr``) < ``flags.min_snr``
1     NO_RADIAL_VELOCITY      no trusted VRAD (not in the MWS catalogue, or not trusted by
                              ``desi.velocity``: RVS_WARN != 0, not SUCCESS, VRAD not finite)
                              : the spectrum could not be shifted to the rest frame
2     FAR_FROM_TRAINING       ``input_distance`` > the bundle's ``ood_threshold``
3     LABEL_OUT_OF_RANGE      a label (of ``flags.range_labels``, default all) lies outside
                              the training range [label_min, label_max] (which ones: bits of
                              ``label_range_flag``, bit i = label i, every label)
4     BAD_FIBERSTATUS         COADD_FIBERSTATUS != 0
5     NO_PREDICTION           a label, its error or the input distance is not finite
6     MISSING_ARM             an arm (B, R or Z) of the spectrum is wholly unusable
                              (``spectra.unusable_arms``: negative or non-finite IVAR,
                              non-finite flux where IVAR > 0, or no good pixel)
7     POOR_FIT                ``rchi2_floor`` (reduced chi-square of the spectrum model at
                              the predicted labels with a model-error floor,
                              ``nn.fit_quality``) > ``flags.max_rchi2_floor``: not a normal
                              single star (galaxy/QSO, wrong velocity, double-lined binary,
                              another instrument) or a poor model
8     COMPOSITE               ``composite_score`` (a second star's line pattern at another
                              velocity, 80-400 km/s, in the residual of the spectrum model,
                              ``nn.binaries``) > ``flags.max_composite_score``: a
                              double-lined binary (or a VRAD off by >~ 50 km/s)
====  ======================  ==============================================================
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from desi_abundances.inference.settings import FlagSettings

FLAG_BITS: dict[str, int] = {
    "LOW_SNR": 0,
    "NO_RADIAL_VELOCITY": 1,
    "FAR_FROM_TRAINING": 2,
    "LABEL_OUT_OF_RANGE": 3,
    "BAD_FIBERSTATUS": 4,
    "NO_PREDICTION": 5,
    "MISSING_ARM": 6,
    "POOR_FIT": 7,
    "COMPOSITE": 8,
}
"""Bit number of each quality flag in the ``flag`` column."""


def quality_flags(
    table: pd.DataFrame,
    label_names: Sequence[str],
    label_min: np.ndarray,
    label_max: np.ndarray,
    ood_threshold: float,
    flags: FlagSettings,
    label_trained: np.ndarray | None = None,
    missing_arm: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(flag, label_range_flag)`` of each row (bits: :data:`FLAG_BITS`, module docstring).

    ``table`` holds snr, vrad_kms, COADD_FIBERSTATUS, input_distance, each label with
    its ``_err`` and optionally ``rchi2`` and ``composite_score`` (absent or NaN: POOR_FIT,
    COMPOSITE are not set). ``label_range_flag`` has bit i set when label i is outside its range.
    ``label_trained`` (bool per label, default all): labels the model had no training data
    for are always NaN and do not set NO_PREDICTION. ``missing_arm`` (bool per row, default
    none): rows with an unusable arm (MISSING_ARM).
    """
    n, n_labels = len(table), len(label_names)
    if n_labels > 63:
        raise ValueError(f"label_range_flag holds at most 63 labels, the model has {n_labels}")
    values = np.zeros((n, n_labels))
    errors = np.zeros((n, n_labels))
    for index, label in enumerate(label_names):
        values[:, index] = table[label].to_numpy(np.float64)
        errors[:, index] = table[f"{label}_err"].to_numpy(np.float64)
    distance = table["input_distance"].to_numpy(np.float64)
    trained = np.ones(n_labels, bool) if label_trained is None else np.asarray(label_trained, bool)
    with np.errstate(invalid="ignore"):
        outside = (values < np.asarray(label_min, np.float64)) | (values > np.asarray(label_max, np.float64))
    label_range_flag = (outside.astype(np.int64) << np.arange(n_labels, dtype=np.int64)).sum(
        axis=1, dtype=np.int64
    )
    bits = {
        "LOW_SNR": table["snr"].to_numpy(np.float64) < flags.min_snr,
        "NO_RADIAL_VELOCITY": ~np.isfinite(table["vrad_kms"].to_numpy(np.float64)),
        "FAR_FROM_TRAINING": distance > ood_threshold,
        "LABEL_OUT_OF_RANGE": outside[:, _range_columns(label_names, flags.range_labels)].any(axis=1),
        "BAD_FIBERSTATUS": table["COADD_FIBERSTATUS"].to_numpy() != 0,
        "NO_PREDICTION": ~(
            np.isfinite(values[:, trained]).all(axis=1)
            & np.isfinite(errors[:, trained]).all(axis=1)
            & np.isfinite(distance)
        ),
        "MISSING_ARM": np.zeros(n, bool) if missing_arm is None else np.asarray(missing_arm, bool),
        "POOR_FIT": _above(table, "rchi2_floor", flags.max_rchi2_floor),
        "COMPOSITE": _above(table, "composite_score", flags.max_composite_score),
    }
    flag = np.zeros(n, dtype=np.int32)
    for name, is_set in bits.items():
        flag |= np.where(is_set, np.int32(1 << FLAG_BITS[name]), np.int32(0))
    return flag, label_range_flag


def _above(table: pd.DataFrame, column: str, threshold: float) -> np.ndarray:
    """Per row: ``column`` > ``threshold`` (False without the column or where NaN)."""
    if column not in table.columns:
        return np.zeros(len(table), bool)
    with np.errstate(invalid="ignore"):
        return table[column].to_numpy(np.float64) > threshold


def _range_columns(label_names: Sequence[str], range_labels: Sequence[str] | None) -> np.ndarray:
    """Indices of the labels that set LABEL_OUT_OF_RANGE.

    Raises:
        ValueError: naming a ``flags.range_labels`` entry the model does not predict.
    """
    if range_labels is None:
        return np.arange(len(label_names))
    unknown = [label for label in range_labels if label not in label_names]
    if unknown:
        raise ValueError(f"params:inference.flags.range_labels {unknown} are not labels of the model")
    return np.array([list(label_names).index(label) for label in range_labels], dtype=int)
