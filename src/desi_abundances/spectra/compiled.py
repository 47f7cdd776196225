"""The compiled path of preprocessing: ``kernels.preprocess_rows`` (numba) runs the numpy
reference's float32 operations (``spectra.reference``) fused per spectrum, in row chunks on
parallel threads (the kernel releases the GIL; rows are independent)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from desi_abundances.physics import SPEED_OF_LIGHT_KMS
from desi_abundances.spectra import kernels
from desi_abundances.spectra import settings as spectra_settings


def preprocess_compiled(arms: list, grid: np.ndarray, velocity: np.ndarray,
                         rest_frame_ok: np.ndarray, settings: dict[str, Any]) -> tuple:
    """The fast path: ``kernels.preprocess_rows``, the reference's operations per spectrum.

    Returns ``(flux, ivar, mask, good_pixel_fraction, snr)``; ``arms`` are ``(ArmSpectra,
    grid window, ContinuumPlan)`` triples as ``spectra.preprocessing`` builds them."""
    n_spectra = velocity.size
    flux = np.empty((n_spectra, grid.size), np.float32)
    ivar = np.empty((n_spectra, grid.size), np.float32)
    mask = np.empty((n_spectra, grid.size), bool)
    good_fraction = np.empty(n_spectra, np.float32)
    snr = np.empty(n_spectra, np.float32)
    step = float(grid[1] - grid[0])
    beta = velocity / SPEED_OF_LIGHT_KMS
    scale = (1.0 + beta).astype(np.float32)
    shift = (grid[0] * beta / step).astype(np.float32)
    plan = arms[0][2]  # the arms share the grid step: their plans differ only in n_bins
    fluxes = tuple(_plain(arm.flux, np.float32) for arm, _, _ in arms)
    ivars = tuple(_plain(arm.ivar, np.float32) for arm, _, _ in arms)
    masks = tuple(_plain(arm.mask, np.int32) for arm, _, _ in arms)
    offsets = np.array([window.start for _, window, _ in arms], np.int64)
    taps = kernels.gaussian_weights(plan.sigma_bins)
    low, high = (np.float32(v) for v in settings["normalised_flux_range"])

    def run(rows: slice) -> None:
        kernels.preprocess_rows(
            tuple(a[rows] for a in fluxes), tuple(a[rows] for a in ivars),
            tuple(a[rows] for a in masks), offsets, plan.bin_pixels, taps,
            settings["continuum_iterations"], np.float32(settings["clip_low_sigma"]),
            np.float32(1.0 - settings["clip_low_depth"]), plan.left_weight, plan.right_weight,
            low, high, scale[rows], shift[rows], rest_frame_ok[rows], flux[rows], ivar[rows],
            mask[rows], good_fraction[rows], snr[rows])

    # the kernel releases the GIL: row chunks run in parallel threads (rows are independent)
    n_threads = min(spectra_settings.PREPROCESS_THREADS, max(1, n_spectra // 64))
    bounds = np.linspace(0, n_spectra, n_threads + 1).astype(int)
    chunks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    if n_threads == 1:
        run(chunks[0])
    else:
        with ThreadPoolExecutor(n_threads, thread_name_prefix="preprocess") as pool:
            list(pool.map(run, chunks))
    return flux, ivar, mask, good_fraction, snr


def _plain(array: np.ndarray, dtype: type) -> np.ndarray:
    """``array`` as a plain, native-endian, C-ordered ndarray of ``dtype`` (no copy when it
    already is one): what the compiled kernels take."""
    return np.ascontiguousarray(np.asarray(array), dtype=dtype)
