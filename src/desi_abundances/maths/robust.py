"""Robust statistics: the scatter of a sample that outliers do not inflate."""
from __future__ import annotations

import math

import numpy as np

MAD_TO_STD = 1.4826
"""Scale from the median absolute deviation to the std of a Gaussian."""


def robust_std(values: np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """1.4826 x the median absolute deviation from the median (same units as ``values``).

    ``axis=None``: one float over every value, NaN for an empty array. With an ``axis``: an
    array of robust stds along it (e.g. one per bootstrap resample).
    """
    values = np.asarray(values, dtype=np.float64)
    if axis is None:
        if values.size == 0:
            return math.nan
        return float(MAD_TO_STD * np.median(np.abs(values - np.median(values))))
    median = np.median(values, axis=axis, keepdims=True)
    return MAD_TO_STD * np.median(np.abs(values - median), axis=axis)
