"""Spectra containers and the operations on them. numpy (plus the optional numba kernels of
``spectra_kernels`` behind :func:`preprocess`), no I/O, no Kedro.

Two containers:

* :class:`CoaddSpectra`: what one DESI coadd file holds: per-arm (B, R, Z) arrays on the
  instrument's wavelength grids, the FIBERMAP (one row per spectrum) and header keywords.
  The mock survey writes it, the coadd reader returns it, data_ingestion stacks it.
* :class:`Spectra`: spectra on one common wavelength grid (after merging the arms), with a
  boolean bad-pixel mask and a row-matched metadata table; what feature engineering produces.

Conventions: wavelength in vacuum Angstrom; flux in 1e-17 erg/s/cm^2/Angstrom (or
dimensionless once continuum-normalised); ivar is the inverse variance of flux, 0 where there
is no information; DESI ``mask`` arrays are int32 bitmasks (0 = good), ``Spectra.mask`` is a
boolean array (True = unusable pixel), as in numpy.ma and astropy.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from desi_abundances.defaults import with_defaults


class SpectraShapeError(ValueError):
    """Arrays of a spectra container disagree in shape."""


def _check_2d(name: str, array: np.ndarray, n_spectra: int, n_pixels: int) -> None:
    if array.shape != (n_spectra, n_pixels):
        raise SpectraShapeError(
            f"{name} has shape {array.shape}, expected ({n_spectra}, {n_pixels})"
        )


@dataclass
class ArmSpectra:
    """One spectrograph arm of many spectra.

    Attributes:
        wavelength: (n_pixels,) float64, vacuum Angstrom.
        flux: (n_spectra, n_pixels) float32, 1e-17 erg/s/cm^2/Angstrom.
        ivar: (n_spectra, n_pixels) float32, inverse variance of flux; 0 = no data.
        mask: (n_spectra, n_pixels) int32 DESI bitmask; 0 = good.
        resolution: optional (n_spectra, n_diagonals, n_pixels) float32 band-diagonal
            resolution matrix, as in DESI coadds.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    resolution: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.wavelength.ndim != 1:
            raise SpectraShapeError(f"wavelength must be 1-D, got shape {self.wavelength.shape}")
        if self.flux.ndim != 2:
            raise SpectraShapeError(f"flux must be 2-D, got shape {self.flux.shape}")
        n_spectra, n_pixels = self.flux.shape
        if n_pixels != self.wavelength.size:
            raise SpectraShapeError(
                f"flux has {n_pixels} pixels but wavelength has {self.wavelength.size}"
            )
        _check_2d("ivar", self.ivar, n_spectra, n_pixels)
        _check_2d("mask", self.mask, n_spectra, n_pixels)
        if self.resolution is not None and (
            self.resolution.ndim != 3
            or self.resolution.shape[0] != n_spectra
            or self.resolution.shape[2] != n_pixels
        ):
            raise SpectraShapeError(
                f"resolution has shape {self.resolution.shape}, "
                f"expected ({n_spectra}, n_diagonals, {n_pixels})"
            )

    @property
    def n_spectra(self) -> int:
        return self.flux.shape[0]

    def select(self, rows: np.ndarray | Sequence[int]) -> ArmSpectra:
        """The spectra at ``rows`` (integer indices or a boolean mask)."""
        return ArmSpectra(
            wavelength=self.wavelength,
            flux=self.flux[rows],
            ivar=self.ivar[rows],
            mask=self.mask[rows],
            resolution=None if self.resolution is None else self.resolution[rows],
        )


@dataclass
class CoaddSpectra:
    """The content of one DESI coadd file (or a stack of several).

    Attributes:
        arms: ``{"B": ArmSpectra, "R": ..., "Z": ...}``, all with the same number of spectra.
        fibermap: one row per spectrum (TARGETID, TARGET_RA, TARGET_DEC, REF_ID, ...).
        header: primary-header keywords (SPECPROD, SURVEY, PROGRAM, HPXPIXEL, MOCK, ...).
        scores: optional SCORES table, row-matched to ``fibermap``.
        exp_fibermap: optional EXP_FIBERMAP table (one row per exposure, not row-matched).
    """

    arms: dict[str, ArmSpectra]
    fibermap: pd.DataFrame
    header: dict[str, Any] = field(default_factory=dict)
    scores: pd.DataFrame | None = None
    exp_fibermap: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        n_rows = len(self.fibermap)
        for arm, data in self.arms.items():
            if data.n_spectra != n_rows:
                raise SpectraShapeError(
                    f"arm {arm} holds {data.n_spectra} spectra but FIBERMAP has {n_rows} rows"
                )
        if self.scores is not None and len(self.scores) != n_rows:
            raise SpectraShapeError(
                f"SCORES has {len(self.scores)} rows but FIBERMAP has {n_rows}"
            )

    @property
    def n_spectra(self) -> int:
        return len(self.fibermap)

    @property
    def is_mock(self) -> bool:
        """True when the file says it was made by the mock survey (header MOCK = True)."""
        return bool(self.header.get("MOCK", False))

    def select(self, rows: np.ndarray | Sequence[int]) -> CoaddSpectra:
        """The spectra at ``rows`` (integer indices or a boolean mask), tables re-indexed."""
        rows = np.asarray(rows)
        return CoaddSpectra(
            arms={arm: data.select(rows) for arm, data in self.arms.items()},
            fibermap=self.fibermap.iloc[rows].reset_index(drop=True)
            if rows.dtype != bool
            else self.fibermap[rows].reset_index(drop=True),
            header=dict(self.header),
            scores=None
            if self.scores is None
            else (self.scores.iloc[rows] if rows.dtype != bool else self.scores[rows]).reset_index(
                drop=True
            ),
            exp_fibermap=self.exp_fibermap,
        )

    @staticmethod
    def concatenate(parts: Sequence[CoaddSpectra]) -> CoaddSpectra:
        """Stack several coadds (same arms and grids) into one; EXP_FIBERMAP is dropped.

        Raises:
            SpectraShapeError: when the parts have different arms or wavelength grids.
        """
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        for part in parts[1:]:
            if part.arms.keys() != first.arms.keys():
                raise SpectraShapeError(
                    f"arms differ: {sorted(part.arms)} vs {sorted(first.arms)}"
                )
            for arm in first.arms:
                if not np.array_equal(part.arms[arm].wavelength, first.arms[arm].wavelength):
                    raise SpectraShapeError(f"arm {arm} wavelength grids differ")
        arms = {}
        for arm, ref in first.arms.items():
            has_resolution = all(p.arms[arm].resolution is not None for p in parts)
            arms[arm] = ArmSpectra(
                wavelength=ref.wavelength,
                flux=np.concatenate([p.arms[arm].flux for p in parts]),
                ivar=np.concatenate([p.arms[arm].ivar for p in parts]),
                mask=np.concatenate([p.arms[arm].mask for p in parts]),
                resolution=np.concatenate([p.arms[arm].resolution for p in parts])
                if has_resolution
                else None,
            )
        scores = (
            pd.concat([p.scores for p in parts], ignore_index=True)
            if all(p.scores is not None for p in parts)
            else None
        )
        return CoaddSpectra(
            arms=arms,
            fibermap=pd.concat([p.fibermap for p in parts], ignore_index=True),
            header=dict(first.header),
            scores=scores,
        )


@dataclass
class Spectra:
    """Spectra on one common wavelength grid.

    Attributes:
        wavelength: (n_pixels,) float64, Angstrom (rest frame once shifted).
        flux: (n_spectra, n_pixels) float32.
        ivar: (n_spectra, n_pixels) float32; 0 wherever ``mask`` is True.
        mask: (n_spectra, n_pixels) bool; True = unusable pixel.
        meta: row-matched table; carries at least TARGETID.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    meta: pd.DataFrame

    def __post_init__(self) -> None:
        n_spectra, n_pixels = len(self.meta), self.wavelength.size
        _check_2d("flux", self.flux, n_spectra, n_pixels)
        _check_2d("ivar", self.ivar, n_spectra, n_pixels)
        _check_2d("mask", self.mask, n_spectra, n_pixels)
        if self.mask.dtype != bool:
            raise SpectraShapeError(f"mask must be boolean, got {self.mask.dtype}")

    @property
    def n_spectra(self) -> int:
        return len(self.meta)

    def select(self, rows: np.ndarray | Sequence[int]) -> Spectra:
        """The spectra at ``rows`` (integer indices or a boolean mask)."""
        rows = np.asarray(rows)
        meta = self.meta[rows] if rows.dtype == bool else self.meta.iloc[rows]
        return Spectra(
            wavelength=self.wavelength,
            flux=self.flux[rows],
            ivar=self.ivar[rows],
            mask=self.mask[rows],
            meta=meta.reset_index(drop=True),
        )


def good_pixels(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Boolean array, True where a pixel is usable: finite flux, ivar > 0, no mask bit set."""
    return np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0) & (mask == 0)


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
    row chunks in threads. Used by data_ingestion and inference alike."""
    arms = list(coadd.arms.values())
    n_spectra = coadd.n_spectra
    n_threads = min(PREPROCESS_THREADS, max(1, n_spectra // 128))
    if n_threads == 1:
        return _median_snr_rows(arms, slice(0, n_spectra))
    # the compiled pass and numpy's sort release the GIL: row chunks run on all cores
    bounds = np.linspace(0, n_spectra, n_threads + 1).astype(int)
    with ThreadPoolExecutor(n_threads, thread_name_prefix="median-snr") as pool:
        parts = pool.map(lambda rows: _median_snr_rows(arms, rows),
                         [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])])
        return np.concatenate(list(parts))


def _median_snr_rows(arms: list, rows: slice) -> np.ndarray:
    """:func:`median_snr` of the spectra at ``rows`` (a slice) of ``arms``: the compiled
    S/N pass and an exact radix selection of the middle values (``spectra_kernels``) when
    numba is installed, else numpy passes and a row sort."""
    arms = [SimpleNamespace(flux=arm.flux[rows], ivar=arm.ivar[rows], mask=arm.mask[rows])
            for arm in arms]
    n_spectra = rows.stop - rows.start
    ratios = np.empty((n_spectra, sum(arm.flux.shape[1] for arm in arms)), np.float32)
    n_good = np.zeros(n_spectra, np.int64)
    column = 0
    try:
        from desi_abundances import spectra_kernels as kernels
    except ImportError:  # numba missing: the numpy passes
        kernels = None
    for arm in arms:
        if kernels is not None:
            kernels.snr_per_pixel(np.ascontiguousarray(arm.flux, np.float32),
                                  np.ascontiguousarray(arm.ivar, np.float32),
                                  np.ascontiguousarray(arm.mask, np.int32), ratios, column,
                                  n_good)
            column += arm.flux.shape[1]
            continue
        out = ratios[:, column : column + arm.flux.shape[1]]
        column += arm.flux.shape[1]
        good = np.isfinite(arm.flux)
        good &= np.isfinite(arm.ivar)
        good &= arm.ivar > 0
        good &= arm.mask == 0
        with np.errstate(invalid="ignore", over="ignore"):
            np.sqrt(arm.ivar, out=out)
            out *= arm.flux
        np.copyto(out, np.float32(np.inf), where=~good)  # sorted after every good value
        n_good += good.sum(axis=1)
    if kernels is not None:
        median = np.empty(n_spectra, np.float32)
        kernels.median_of_rows(ratios, n_good, median)
        return median
    ratios.sort(axis=1)
    rows = np.arange(n_spectra)
    low = ratios[rows, np.maximum((n_good - 1) // 2, 0)]
    high = ratios[rows, np.maximum(n_good // 2, 0)]
    with np.errstate(invalid="ignore", over="ignore"):
        middle = (low + high) / np.float32(2)
    return np.where(n_good > 0, middle, 0).astype(np.float32)


# =======================================================================================
# Preprocessing: continuum-normalise each arm, merge the arms, shift to the rest frame.
# Used by feature engineering (training set) AND inference with the same ``settings``
# (``params:feature_engineering.preprocessing``, stored in the model bundle).
# The numpy reference (``preprocess_reference``, which defines the result) works on whole
# (n_spectra, n_pixels) blocks of ``PREPROCESS_BLOCK_ROWS`` rows (cache-sized; results do
# not depend on the block size). ``preprocess`` runs the same float32 operations fused per
# spectrum in compiled kernels (``spectra_kernels``) when numba is installed.
# =======================================================================================

DEFAULT_PREPROCESSING: dict[str, Any] = {
    "continuum_sigma_angstrom": 20.0,
    "continuum_bin_pixels": 10,
    "continuum_iterations": 3,
    "clip_low_sigma": 2.0,
    "clip_low_depth": 0.02,
    "normalised_flux_range": [-0.5, 2.0],
    "max_abs_vrad_kms": 1000.0,
}
"""Defaults of the ``preprocess`` settings; ``params:feature_engineering.preprocessing``
overrides them (missing keys fall back here, unknown keys raise).

continuum_sigma_angstrom: Gaussian sigma of the running continuum, Angstrom.
continuum_bin_pixels: pixels per coarse bin on which the smoothing is done.
continuum_iterations: smoothing passes; each after the first drops absorption pixels.
clip_low_sigma, clip_low_depth: a pixel is dropped from the next pass when
    flux < continuum * (1 - clip_low_depth) - clip_low_sigma * sigma_flux.
normalised_flux_range: normalised fluxes outside [lo, hi] are masked (cosmics, bad sky).
max_abs_vrad_kms: |vrad| above this is treated as a failed velocity.
"""

PREPROCESS_BLOCK_ROWS = 16
"""Spectra per block in :func:`preprocess` (cache-sized; no effect on the result)."""

_BAD_VARIANCE = np.float32(1e30)
"""Stand-in variance of bad pixels during interpolation; any result above 1e20 is bad."""


def preprocessing_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """The full settings dict: ``DEFAULT_PREPROCESSING`` overridden by ``settings``.

    Raises:
        ValueError: on an unknown key (a typo would otherwise be silently ignored).
    """
    full = with_defaults(DEFAULT_PREPROCESSING, settings, "preprocessing")
    full["continuum_sigma_angstrom"] = float(full["continuum_sigma_angstrom"])
    full["continuum_bin_pixels"] = int(full["continuum_bin_pixels"])
    full["continuum_iterations"] = int(full["continuum_iterations"])
    full["clip_low_sigma"] = float(full["clip_low_sigma"])
    full["clip_low_depth"] = float(full["clip_low_depth"])
    full["normalised_flux_range"] = [float(v) for v in full["normalised_flux_range"]]
    full["max_abs_vrad_kms"] = float(full["max_abs_vrad_kms"])
    if full["continuum_iterations"] < 1 or full["continuum_bin_pixels"] < 1:
        raise ValueError("continuum_iterations and continuum_bin_pixels must be >= 1")
    return full


def _lattice_offset(wavelength: np.ndarray, grid: np.ndarray, name: str) -> int:
    """Index of ``wavelength[0]`` in ``grid`` when ``wavelength`` is a contiguous slice of it."""
    step = grid[1] - grid[0]
    offset = int(round((wavelength[0] - grid[0]) / step))
    stop = offset + wavelength.size
    if offset < 0 or stop > grid.size or not np.allclose(
        wavelength, grid[offset:stop], rtol=0, atol=1e-3 * step
    ):
        raise SpectraShapeError(
            f"arm {name} wavelengths ({wavelength[0]:.2f}-{wavelength[-1]:.2f} A, "
            f"{wavelength.size} px) are not a slice of the {grid[0]:.1f}-{grid[-1]:.1f} A "
            f"grid with {step:.3f} A steps: merging would need resampling"
        )
    return offset


@dataclass(frozen=True)
class _ContinuumPlan:
    """Precomputed geometry of the coarse-bin continuum for one arm."""

    n_pixels: int
    bin_pixels: int
    n_bins: int
    sigma_bins: float  # Gaussian sigma in bins
    left_weight: np.ndarray  # (half,) weight of the previous bin centre, first half-bin
    right_weight: np.ndarray  # (bin - half,) weight of the next bin centre, second half

    @staticmethod
    def build(n_pixels: int, step_angstrom: float, settings: dict[str, Any]) -> _ContinuumPlan:
        bin_pixels = settings["continuum_bin_pixels"]
        n_bins = -(-n_pixels // bin_pixels)
        sigma_bins = settings["continuum_sigma_angstrom"] / (step_angstrom * bin_pixels)
        # pixel k of a bin sits at u = (k - (B - 1) / 2) / B bin widths from the bin centre
        u = (np.arange(bin_pixels) - (bin_pixels - 1) / 2.0) / bin_pixels
        half = int(np.sum(u < 0))
        return _ContinuumPlan(
            n_pixels=n_pixels,
            bin_pixels=bin_pixels,
            n_bins=n_bins,
            sigma_bins=float(sigma_bins),
            left_weight=(-u[:half]).astype(np.float32),
            right_weight=u[half:].astype(np.float32),
        )

    @property
    def padded(self) -> int:
        return self.n_bins * self.bin_pixels

    def coarse(self, weighted_flux: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Smoothed ``sum(w f) / sum(w)`` at the bin centres, (n, n_bins); NaN-free."""
        from scipy.ndimage import gaussian_filter1d

        n = weighted_flux.shape[0]
        ones = np.ones(self.bin_pixels, np.float32)  # matrix-vector sums: 8x np.sum's speed
        sums = np.concatenate(
            [
                weighted_flux.reshape(n, self.n_bins, self.bin_pixels) @ ones,
                weight.reshape(n, self.n_bins, self.bin_pixels) @ ones,
            ]
        )
        # a C convolution: a dense matrix product would pull in (contended) BLAS threads
        smooth = gaussian_filter1d(sums, self.sigma_bins, axis=1, mode="constant", truncate=5.0)
        num, den = smooth[:n], smooth[n:]
        with np.errstate(divide="ignore", invalid="ignore"):
            level = np.where(den > 0, num / den, np.nan)
        return _fill_nan_rows(level)

    def fine(self, level: np.ndarray) -> np.ndarray:
        """Linear interpolation of bin-centre values to every (padded) pixel, (n, padded)."""
        n = level.shape[0]
        previous = np.concatenate([level[:, :1], level[:, :-1]], axis=1) - level
        following = np.concatenate([level[:, 1:], level[:, -1:]], axis=1) - level
        out = np.empty((n, self.n_bins, self.bin_pixels), np.float32)
        half = self.left_weight.size
        np.multiply(previous[:, :, None], self.left_weight, out=out[:, :, :half])
        np.multiply(following[:, :, None], self.right_weight, out=out[:, :, half:])
        out += level[:, :, None]
        return out.reshape(n, self.padded)


def _fill_nan_rows(values: np.ndarray) -> np.ndarray:
    """Replace NaN in each row by the nearest finite value of that row (all-NaN rows -> 1)."""
    missing = np.isnan(values)
    if not missing.any():
        return values.astype(np.float32, copy=False)
    n_cols = values.shape[1]
    columns = np.broadcast_to(np.arange(n_cols), values.shape)
    last_good = np.maximum.accumulate(np.where(missing, -1, columns), axis=1)
    next_good = np.minimum.accumulate(np.where(missing, n_cols, columns)[:, ::-1], axis=1)[:, ::-1]
    use_next = (last_good < 0) | ((next_good < n_cols) & (next_good - columns < columns - last_good))
    source = np.clip(np.where(use_next, next_good, last_good), 0, n_cols - 1)
    filled = np.take_along_axis(values, source, axis=1)
    filled[missing.all(axis=1)] = 1.0
    return filled.astype(np.float32, copy=False)


def normalise_arm(
    flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, plan: _ContinuumPlan,
    settings: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Continuum-normalise one arm of a block of spectra.

    Method: an inverse-variance-weighted running Gaussian smoothing of the flux (as Ho et al.
    2017 did for LAMOST with The Cannon, sigma = 50 A there) with iterative clipping of
    absorption lines. For speed the sums ``sum(ivar f)`` and ``sum(ivar)`` are taken on coarse
    bins of ``continuum_bin_pixels`` pixels, smoothed there with a Gaussian of
    ``continuum_sigma_angstrom`` (one small matrix product), divided, and linearly
    interpolated back to the pixels. After each pass, pixels with
    ``flux < continuum (1 - clip_low_depth) - clip_low_sigma sigma_flux`` (absorption lines)
    are left out of the next one, so the continuum tracks the upper envelope; the depth term
    keeps the estimate nearly independent of S/N at high S/N, the sigma term stops noise from
    being clipped at low S/N.

    Why: normalising each arm separately absorbs arm-junction steps; a 20 A Gaussian
    follows flux-calibration wiggles of a few hundred A closely (a Gaussian of sigma s passes
    a sinusoid of period P with amplitude exp(-2 pi^2 s^2 / P^2): 92 % at P = 300 A,
    97 % at 500 A) while leaving lines a few A wide intact; the price is that molecular
    bands broader than ~50 A are flattened, which the labels barely need.

    Returns:
        ``(ivar_n * flux_n, ivar_n)`` of the normalised spectrum (flux_n = flux / continuum,
        ivar_n = ivar continuum^2), (n, n_pixels) float32 views: the products the
        inverse-variance merge of the arms needs. Bad pixels (IVAR <= 0, MASK set,
        non-finite) have 0 in both.
    """
    n, n_pixels = flux.shape
    padded = plan.padded
    shape3 = (n, plan.n_bins, plan.bin_pixels)
    weight = np.empty((n, padded), np.float32)
    weighted_flux = np.empty((n, padded), np.float32)
    weight[:, n_pixels:] = 0.0
    weighted_flux[:, n_pixels:] = 0.0
    w, wf = weight[:, :n_pixels], weighted_flux[:, :n_pixels]
    with np.errstate(invalid="ignore", over="ignore"):
        good = mask == 0
        good &= ivar > 0
        w.fill(0.0)
        np.copyto(w, ivar, where=good)
        np.multiply(flux, w, out=wf)
        if not np.isfinite(wf.sum()):  # rare: NaN/inf flux or infinite ivar
            bad = ~np.isfinite(wf)
            wf[bad] = 0.0
            w[bad] = 0.0

    level = plan.coarse(weighted_flux, weight)
    if settings["continuum_iterations"] > 1:
        # flux < level (1 - depth) - k sigma  <=>  w f < w level (1 - depth) - k sqrt(w)
        k_sqrt_weight = np.sqrt(weight)
        k_sqrt_weight *= settings["clip_low_sigma"]
        keep_fraction = np.float32(1.0 - settings["clip_low_depth"])
        for _ in range(settings["continuum_iterations"] - 1):
            threshold = weight.reshape(shape3) * (level * keep_fraction)[:, :, None]
            threshold = threshold.reshape(n, padded)
            threshold -= k_sqrt_weight
            line = weighted_flux < threshold
            level = plan.coarse(np.where(line, np.float32(0.0), weighted_flux),
                                np.where(line, np.float32(0.0), weight))
    level[~(level > 0)] = 1.0  # no information or non-positive: leave the flux as it is
    cont = plan.fine(level)[:, :n_pixels]
    # normalised flux f / c with ivar w c^2; returned as (f / c) (w c^2) = w f c and w c^2
    wf *= cont
    w *= cont
    w *= cont
    return wf, w


def shift_to_rest_frame(
    flux: np.ndarray, ivar: np.ndarray, wavelength: np.ndarray, vrad_kms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Resample observed-frame spectra onto the same grid read as rest-frame wavelengths.

    The rest-frame pixel at lambda takes the observed flux at lambda (1 + v / c) (first-order
    Doppler; the second-order term is < 3e-6 for |v| < 500 km/s), linearly interpolated
    between the two neighbouring observed pixels (a vectorised gather on the flattened
    arrays). Variances propagate as (1 - t)^2 var_0 + t^2 var_1. A rest pixel is bad
    (ivar 0, flux 1) when a neighbour with non-zero weight is bad or it falls off the
    observed grid.

    Args:
        flux, ivar: (n, n_pixels) float32 on the linear grid ``wavelength`` (Angstrom).
        vrad_kms: (n,) finite radial velocities, km/s (positive = receding).
    """
    from desi_abundances.constants import SPEED_OF_LIGHT_KMS

    n, n_pixels = flux.shape
    step = float(wavelength[1] - wavelength[0])
    beta = np.asarray(vrad_kms, np.float64) / SPEED_OF_LIGHT_KMS
    # observed pixel position of rest pixel i: i (1 + beta) + lambda_0 beta / step
    position = np.arange(n_pixels, dtype=np.float32)[None, :] * (1.0 + beta).astype(np.float32)[
        :, None
    ]
    position += (wavelength[0] * beta / step).astype(np.float32)[:, None]
    left_float = np.floor(position)
    t = position - left_float
    inside = (left_float >= 0) & (left_float <= n_pixels - 2)
    left = np.clip(left_float, 0, n_pixels - 2).astype(np.intp)  # intp: 2x faster gathers
    left += (np.arange(n, dtype=np.intp) * n_pixels)[:, None]

    # interleave (flux, variance) so that one 8-byte gather fetches both
    packed = np.empty((n, n_pixels, 2), np.float32)
    packed[:, :, 0] = flux
    with np.errstate(divide="ignore"):
        np.divide(1.0, ivar, out=packed[:, :, 1])
    packed[:, :, 1][~(ivar > 0)] = _BAD_VARIANCE
    pairs = packed.view(np.float64).reshape(n * n_pixels)
    at_left = pairs[left].view(np.float32).reshape(n, n_pixels, 2)
    at_right = pairs[1:][left].view(np.float32).reshape(n, n_pixels, 2)

    out_flux = at_right[:, :, 0] - at_left[:, :, 0]
    out_flux *= t
    out_flux += at_left[:, :, 0]
    w0 = 1.0 - t
    variance = w0 * w0 * at_left[:, :, 1]
    t *= t
    t *= at_right[:, :, 1]
    variance += t
    bad = ~inside | (variance > 1e20)
    out_ivar = np.divide(1.0, variance, out=variance)
    out_ivar[bad] = 0.0
    out_flux[bad] = 1.0
    return out_flux, out_ivar


def preprocess(coadd: CoaddSpectra, vrad_kms: np.ndarray, settings: dict[str, Any]) -> Spectra:
    """DESI coadd -> continuum-normalised, rest-frame spectra on the brz grid: see
    :func:`preprocess_reference`, which defines the result. This runs the compiled kernels of
    ``spectra_kernels`` (same float32 operations fused per spectrum, ~10x faster; equal to
    the reference within float32 rounding, identical masks) when numba is installed, and
    the numpy reference otherwise."""
    return _preprocess(coadd, vrad_kms, settings, fast=None)


def preprocess_reference(coadd: CoaddSpectra, vrad_kms: np.ndarray,
                         settings: dict[str, Any]) -> Spectra:
    """The numpy reference of :func:`preprocess` (its definition; tests compare the two)."""
    return _preprocess(coadd, vrad_kms, settings, fast=False)


def _preprocess(coadd: CoaddSpectra, vrad_kms: np.ndarray, settings: dict[str, Any],
                fast: bool | None) -> Spectra:
    """DESI coadd -> continuum-normalised, rest-frame spectra on the brz grid.

    Steps: (1) per arm, a robust pseudo-continuum divides the flux and multiplies the ivar by
    its square (:func:`normalise_arm`), so flux-calibration wiggles and arm-junction steps
    drop out; (2) the arms are merged onto the brz grid (3600-9824 A, 0.8 A: the arms are
    slices of it, so no resampling) with inverse-variance weights in the overlaps; (3) each
    spectrum is shifted to the rest frame with its ``vrad_kms`` (:func:`shift_to_rest_frame`);
    the output grid is the brz grid read as rest-frame wavelengths.

    Missing velocities: a spectrum whose ``vrad_kms`` is not finite or exceeds
    ``max_abs_vrad_kms`` cannot be put in the rest frame. It is NOT used unshifted: every
    pixel is masked (mask True, ivar 0, flux 1) and ``meta.rest_frame_ok`` is False, so it
    carries no information; feature engineering drops such rows and ``predict_labels``
    returns NaN labels for them.

    Bad pixels (IVAR <= 0, any MASK bit, non-finite values, merged normalised flux outside
    ``normalised_flux_range``, off the grid after the shift) end with mask True, ivar 0 and
    flux 1; the output holds no NaN.

    Args:
        coadd: a coadd (or a stack of them) with arms on slices of the brz lattice.
        vrad_kms: (n_spectra,) radial velocities, km/s, row-matched to ``coadd.fibermap``.
        settings: ``params:feature_engineering.preprocessing`` (keys of
            ``DEFAULT_PREPROCESSING``; missing ones take the defaults).

    Returns:
        :class:`Spectra`; meta = TARGETID, vrad_kms, rest_frame_ok, good_pixel_fraction,
        snr (:func:`median_snr` of the input spectrum; the compiled path computes it while
        the arms are in cache),
        ``meta.attrs["preprocessing"]`` = the full settings used and
        ``meta.attrs["is_mock"]`` = ``coadd.is_mock``.

    Raises:
        SpectraShapeError: when vrad_kms does not match the coadd or an arm is off the grid.
        KeyError: when the FIBERMAP has no TARGETID.
    """
    from desi_abundances.constants import brz_wavelength

    settings = preprocessing_settings(settings)
    vrad_kms = np.asarray(vrad_kms, dtype=np.float64).reshape(-1)
    if vrad_kms.size != coadd.n_spectra:
        raise SpectraShapeError(
            f"vrad_kms has {vrad_kms.size} values but the coadd holds {coadd.n_spectra} spectra"
        )
    if "TARGETID" not in coadd.fibermap.columns:
        raise KeyError("coadd FIBERMAP has no TARGETID column")
    grid = brz_wavelength()
    step = float(grid[1] - grid[0])
    arms = []
    for name, arm in coadd.arms.items():
        offset = _lattice_offset(np.asarray(arm.wavelength, np.float64), grid, name)
        plan = _ContinuumPlan.build(arm.wavelength.size, step, settings)
        arms.append((arm, slice(offset, offset + arm.wavelength.size), plan))
    with np.errstate(invalid="ignore"):
        rest_frame_ok = np.isfinite(vrad_kms) & (np.abs(vrad_kms) <= settings["max_abs_vrad_kms"])
    velocity = np.where(rest_frame_ok, vrad_kms, 0.0)

    if fast is None:
        fast = FAST_PREPROCESS
    if fast:
        flux, ivar, mask, good_fraction, snr = _preprocess_compiled(
            arms, grid, velocity, rest_frame_ok, settings)
    else:
        flux, ivar, mask, good_fraction = _preprocess_numpy(
            arms, grid, velocity, rest_frame_ok, settings)
        snr = median_snr_reference(coadd)
    meta = pd.DataFrame(
        {
            "TARGETID": coadd.fibermap["TARGETID"].to_numpy(),
            "vrad_kms": vrad_kms,
            "rest_frame_ok": rest_frame_ok,
            "good_pixel_fraction": good_fraction,
            "snr": snr,
        }
    )
    meta.attrs["preprocessing"] = settings  # read by nn.predict.check_compatible
    meta.attrs["is_mock"] = coadd.is_mock
    return Spectra(wavelength=grid, flux=flux, ivar=ivar, mask=mask, meta=meta)


def _preprocess_numpy(arms: list, grid: np.ndarray, velocity: np.ndarray,
                      rest_frame_ok: np.ndarray, settings: dict[str, Any]) -> tuple:
    """The reference path: numpy block operations, ``PREPROCESS_BLOCK_ROWS`` rows at a time."""
    n_spectra = velocity.size
    flux = np.empty((n_spectra, grid.size), np.float32)
    ivar = np.empty((n_spectra, grid.size), np.float32)
    mask = np.empty((n_spectra, grid.size), bool)
    low, high = settings["normalised_flux_range"]
    for start in range(0, n_spectra, PREPROCESS_BLOCK_ROWS):
        rows = slice(start, min(start + PREPROCESS_BLOCK_ROWS, n_spectra))
        n = rows.stop - rows.start
        weighted = np.zeros((n, grid.size), np.float32)
        total = np.zeros((n, grid.size), np.float32)
        for arm, window, plan in arms:
            arm_weighted, arm_ivar = normalise_arm(
                arm.flux[rows], arm.ivar[rows], arm.mask[rows], plan, settings
            )
            weighted[:, window] += arm_weighted
            total[:, window] += arm_ivar
        # pixels without data keep weighted = 0 (finite); the shift marks them bad
        merged = np.divide(weighted, total, out=weighted, where=total > 0)
        total[(merged < low) | (merged > high)] = 0.0
        block_flux, block_ivar = shift_to_rest_frame(merged, total, grid, velocity[rows])
        block_ivar[~rest_frame_ok[rows]] = 0.0
        block_mask = block_ivar <= 0
        block_flux[block_mask] = 1.0
        flux[rows], ivar[rows], mask[rows] = block_flux, block_ivar, block_mask
    return flux, ivar, mask, 1.0 - mask.mean(axis=1, dtype=np.float32)


def _preprocess_compiled(arms: list, grid: np.ndarray, velocity: np.ndarray,
                         rest_frame_ok: np.ndarray, settings: dict[str, Any]) -> tuple:
    """The fast path: ``spectra_kernels`` (numba), the reference's operations per spectrum."""
    from desi_abundances import spectra_kernels as kernels
    from desi_abundances.constants import SPEED_OF_LIGHT_KMS

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
    n_threads = min(PREPROCESS_THREADS, max(1, n_spectra // 64))
    bounds = np.linspace(0, n_spectra, n_threads + 1).astype(int)
    chunks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    if n_threads == 1:
        run(chunks[0])
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(n_threads, thread_name_prefix="preprocess") as pool:
            list(pool.map(run, chunks))
    return flux, ivar, mask, good_fraction, snr


def _plain(array: np.ndarray, dtype: type) -> np.ndarray:
    """``array`` as a plain, native-endian, C-ordered ndarray of ``dtype`` (no copy when it
    already is one): what the compiled kernels take."""
    return np.ascontiguousarray(np.asarray(array), dtype=dtype)


def _numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


FAST_PREPROCESS = _numba_available()
PREPROCESS_THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
    os.cpu_count() or 1)
"""Threads of the compiled :func:`preprocess` (all usable cores; results do not depend on it)."""
"""True when :func:`preprocess` runs the compiled kernels (numba installed)."""
