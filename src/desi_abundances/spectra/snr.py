"""Median S/N per pixel of each spectrum: the numpy definition and the compiled path."""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from desi_abundances.spectra import kernels
from desi_abundances.spectra import settings as spectra_settings
from desi_abundances.spectra.containers import ArmSpectra, CoaddSpectra, good_pixels


def median_snr_reference(coadd: CoaddSpectra) -> np.ndarray:
    """Median S/N per pixel of each spectrum over the good pixels of all arms, (n_spectra,).

    The plain numpy definition (``np.nanmedian`` of ``flux * sqrt(ivar)`` over
    :func:`good_pixels`; 0 for spectra with no good pixel) that :func:`median_snr` must
    reproduce exactly; kept for the tests.
    """
    ratios = []
    for data in coadd.arms.values():
        good = good_pixels(data.flux, data.ivar, data.mask)
        snr = np.where(good, data.flux * np.sqrt(np.where(good, data.ivar, 0.0)), np.nan)
        ratios.append(snr)
    stacked = np.concatenate(ratios, axis=1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        result = np.nanmedian(stacked, axis=1)
    return np.nan_to_num(result, nan=0.0).astype(np.float32)


def median_snr(coadd: CoaddSpectra) -> np.ndarray:
    """Median S/N per pixel of each spectrum over the good pixels of all arms, (n_spectra,)
    float32; 0 for spectra with no good pixel. S/N per pixel is ``flux * sqrt(ivar)``.

    Same values as :func:`median_snr_reference` (a tested identity), several times faster:
    one compiled pass and an exact radix selection instead of ``np.nanmedian``,
    row chunks in threads (``settings.PREPROCESS_THREADS``). Used by data_ingestion and
    inference alike."""
    arms = list(coadd.arms.values())
    n_spectra = coadd.n_spectra
    n_threads = min(spectra_settings.PREPROCESS_THREADS, max(1, n_spectra // 128))
    if n_threads == 1:
        return _median_snr_rows(arms, slice(0, n_spectra))
    # the compiled pass and the selection release the GIL: row chunks run on all cores
    bounds = np.linspace(0, n_spectra, n_threads + 1).astype(int)
    with ThreadPoolExecutor(n_threads, thread_name_prefix="median-snr") as pool:
        parts = pool.map(lambda rows: _median_snr_rows(arms, rows),
                         [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])])
        return np.concatenate(list(parts))


def _median_snr_rows(arms: list[ArmSpectra], rows: slice) -> np.ndarray:
    """:func:`median_snr` of the spectra at ``rows`` (a slice) of ``arms``: the compiled
    S/N pass (``kernels.snr_per_pixel``) and an exact radix selection of the middle values
    (``kernels.median_of_rows``)."""
    n_spectra = rows.stop - rows.start
    ratios = np.empty((n_spectra, sum(arm.flux.shape[1] for arm in arms)), np.float32)
    n_good = np.zeros(n_spectra, np.int64)
    column = 0
    for arm in arms:
        kernels.snr_per_pixel(np.ascontiguousarray(arm.flux[rows], np.float32),
                              np.ascontiguousarray(arm.ivar[rows], np.float32),
                              np.ascontiguousarray(arm.mask[rows], np.int32), ratios, column,
                              n_good)
        column += arm.flux.shape[1]
    median = np.empty(n_spectra, np.float32)
    kernels.median_of_rows(ratios, n_good, median)
    return median
