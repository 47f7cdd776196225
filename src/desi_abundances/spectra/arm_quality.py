"""Per-spectrum arm checks: which arms of which spectra are wholly unusable, so that a star
labelled from two arms out of three is flagged (``MISSING_ARM``) and never FLAG 0.

An arm of one spectrum is unusable when it carries values no instrument writes (a negative
or non-finite IVAR, a non-finite flux where IVAR > 0) or has no good pixel at all (IVAR > 0,
finite flux, MASK 0). One compiled pass per arm (~1 ns per pixel, no GIL: inference runs
it in its reader threads); :func:`unusable_arms_reference` is the numpy definition.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from desi_abundances.spectra.containers import CoaddSpectra


@njit(cache=True, nogil=True, error_model="numpy")
def _unusable_rows(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row: True when the row has an invalid value or no good pixel (see module)."""
    n_rows, n_pixels = flux.shape
    out = np.zeros(n_rows, dtype=np.bool_)
    for row in range(n_rows):
        n_good = 0
        n_bad = 0
        for pixel in range(n_pixels):
            f = flux[row, pixel]
            w = ivar[row, pixel]
            finite_f = np.isfinite(f)
            positive = w > 0
            n_bad += (w < 0) | ~np.isfinite(w) | (positive & ~finite_f)
            n_good += positive & finite_f & (mask[row, pixel] == 0) & np.isfinite(w)
        out[row] = (n_bad > 0) | (n_good == 0)
    return out


def unusable_arms_reference(coadd: CoaddSpectra) -> np.ndarray:
    """(n_spectra, n_arms) bool, arms in ``coadd.arms`` order: the numpy definition."""
    columns = []
    for data in coadd.arms.values():
        flux, ivar = np.asarray(data.flux), np.asarray(data.ivar)
        with np.errstate(invalid="ignore"):
            positive = ivar > 0
            bad = (ivar < 0) | ~np.isfinite(ivar) | (positive & ~np.isfinite(flux))
            good = positive & np.isfinite(flux) & np.isfinite(ivar) & (np.asarray(data.mask) == 0)
        columns.append(bad.any(axis=1) | ~good.any(axis=1))
    return np.stack(columns, axis=1) if columns else np.zeros((coadd.n_spectra, 0), bool)


def unusable_arms(coadd: CoaddSpectra) -> np.ndarray:
    """(n_spectra, n_arms) bool, arms in ``coadd.arms`` order: True where the arm of that
    spectrum is wholly unusable (same values as :func:`unusable_arms_reference`)."""
    columns = []
    for data in coadd.arms.values():
        flux = np.ascontiguousarray(data.flux, dtype=np.float32)
        ivar = np.ascontiguousarray(data.ivar, dtype=np.float32)
        mask = np.ascontiguousarray(data.mask, dtype=np.int32)
        columns.append(_unusable_rows(flux, ivar, mask))
    return np.stack(columns, axis=1) if columns else np.zeros((coadd.n_spectra, 0), bool)


def missing_arm(coadd: CoaddSpectra, required: Sequence[str] = ()) -> np.ndarray:
    """(n_spectra,) bool: some arm of the spectrum is unusable (:func:`unusable_arms`) or one
    of the ``required`` arms is absent from the coadd."""
    absent = any(arm not in coadd.arms for arm in required)
    if absent:
        return np.ones(coadd.n_spectra, dtype=bool)
    return unusable_arms(coadd).any(axis=1)
