"""One row per star: which of a TARGETID's spectra is the suggested one (``PRIMARY``) and how
many it has (``NSPEC``), DESI's habit (``PRIMARY`` in the MWS catalogue, ``ZCAT_PRIMARY`` /
``ZCAT_NSPEC`` in the redshift catalogues).

Rule: among the spectra of one TARGETID (e.g. main/bright and main/backup), the PRIMARY one is
the *good* spectrum (``FLAG == 0``) of highest ``SNR``; when none is good, the one of highest
``SNR``; ties (and NaN S/N, ranked last) go to the first in catalogue order. Exactly one row per
TARGETID has PRIMARY true. Select one row per star with ``PRIMARY``.
"""
from __future__ import annotations

import numpy as np


def primary_spectra(targetid: np.ndarray, snr: np.ndarray, flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(primary, nspec)`` of every row (see the module docstring); vectorised.

    Args:
        targetid: int64 TARGETID of each row.
        snr: median S/N per pixel of each row (NaN ranks last).
        flag: quality bits of each row (0 = good).

    Returns:
        ``primary`` (bool, exactly one True per TARGETID) and ``nspec`` (int16: rows sharing the
        row's TARGETID).
    """
    targetid = np.asarray(targetid, dtype=np.int64)
    n = targetid.size
    primary = np.zeros(n, dtype=bool)
    if n == 0:
        return primary, np.zeros(0, dtype=np.int16)
    snr = np.asarray(snr, dtype=np.float64)
    rank_snr = np.where(np.isfinite(snr), -snr, np.inf)  # higher S/N first, NaN last
    bad = np.asarray(flag) != 0  # good (False) first
    order = np.lexsort((np.arange(n), rank_snr, bad, targetid))
    sorted_ids = targetid[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    primary[order[starts]] = True
    counts = np.diff(np.r_[starts, n])
    nspec = np.empty(n, dtype=np.int16)
    nspec[order] = np.repeat(np.minimum(counts, np.iinfo(np.int16).max), counts).astype(np.int16)
    return primary, nspec
