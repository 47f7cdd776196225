"""The numpy reference of preprocessing, which defines its result: continuum normalisation
of each arm (:func:`normalise_arm`), the inverse-variance merge onto the brz grid and the
rest-frame shift (:func:`shift_to_rest_frame`), on whole (n_spectra, n_pixels) blocks of
``PREPROCESS_BLOCK_ROWS`` rows (cache-sized; results do not depend on the block size).
``spectra.compiled`` repeats the same float32 operations fused per spectrum."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from desi_abundances.physics import SPEED_OF_LIGHT_KMS
from desi_abundances.spectra.containers import SpectraShapeError

PREPROCESS_BLOCK_ROWS = 16
"""Spectra per block in :func:`preprocess` (cache-sized; no effect on the result)."""

_BAD_VARIANCE = np.float32(1e30)
"""Stand-in variance of bad pixels during interpolation; any result above 1e20 is bad."""


def lattice_offset(wavelength: np.ndarray, grid: np.ndarray, name: str) -> int:
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
class ContinuumPlan:
    """Precomputed geometry of the coarse-bin continuum for one arm."""

    n_pixels: int
    bin_pixels: int
    n_bins: int
    sigma_bins: float  # Gaussian sigma in bins
    left_weight: np.ndarray  # (half,) weight of the previous bin centre, first half-bin
    right_weight: np.ndarray  # (bin - half,) weight of the next bin centre, second half

    @staticmethod
    def build(n_pixels: int, step_angstrom: float, settings: dict[str, Any]) -> ContinuumPlan:
        bin_pixels = settings["continuum_bin_pixels"]
        n_bins = -(-n_pixels // bin_pixels)
        sigma_bins = settings["continuum_sigma_angstrom"] / (step_angstrom * bin_pixels)
        # pixel k of a bin sits at u = (k - (B - 1) / 2) / B bin widths from the bin centre
        u = (np.arange(bin_pixels) - (bin_pixels - 1) / 2.0) / bin_pixels
        half = int(np.sum(u < 0))
        return ContinuumPlan(
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
    flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, plan: ContinuumPlan,
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



def preprocess_numpy(arms: list, grid: np.ndarray, velocity: np.ndarray,
                      rest_frame_ok: np.ndarray, settings: dict[str, Any]) -> tuple:
    """The reference path of ``spectra.preprocessing``: numpy block operations, ``PREPROCESS_BLOCK_ROWS`` rows at a time."""
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
