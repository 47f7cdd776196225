"""DESI's instrument (the mock survey, the emulator and the information limit use it): Doppler
shift, line-spread function and resampling onto the B/R/Z pixels, stellar continuum, flux-calibration wiggles, arm-junction steps,
noise matching IVAR, sky-line residuals and masked pixels. numpy/scipy only.

Wavelengths in vacuum Angstrom; velocities in km/s; flux in 1e-17 erg/s/cm^2/Angstrom.
The recipe per batch of stars: shift the normalised model spectra on the model's
ln-uniform grid (a Doppler shift is an index offset there), apply one precomputed sparse
matrix per arm (Gaussian LSF with DESI's resolution minus the model's own, integrated over
the 0.8 A pixel, and resampling), multiply by the continuum (black body x extinction), the
calibration wiggles and the arm steps, then draw noise.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from desi_abundances.desi.bitmasks import SPECMASK_BITS
from desi_abundances.desi.grids import ARMS, WAVELENGTH_STEP_ANGSTROM, arm_wavelength
from desi_abundances.physics import SPEED_OF_LIGHT_KMS

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def desi_resolving_power(wavelength: np.ndarray) -> np.ndarray:
    """DESI's R = lambda / FWHM: ~2,000 at 3,600 A rising linearly to ~5,500 at 9,800 A."""
    wavelength = np.asarray(wavelength, dtype=float)
    return 2000.0 + (wavelength - 3600.0) * (3500.0 / 6200.0)


def lsf_sigma_angstrom(wavelength: np.ndarray, model_resolving_power: float = np.inf) -> np.ndarray:
    """Gaussian sigma (A) still to apply to a model of native R to reach DESI's LSF,
    including the 0.8 A pixel's boxcar (variance step^2 / 12)."""
    wavelength = np.asarray(wavelength, dtype=float)
    sigma_desi = wavelength / desi_resolving_power(wavelength) * FWHM_TO_SIGMA
    sigma_model = 0.0 if np.isinf(model_resolving_power) else (
        wavelength / model_resolving_power * FWHM_TO_SIGMA)
    variance = sigma_desi**2 - sigma_model**2 + WAVELENGTH_STEP_ANGSTROM**2 / 12.0
    if np.any(variance <= 0):
        raise ValueError("model resolution is coarser than DESI's: cannot deconvolve")
    return np.sqrt(variance)


def lsf_matrix(model_wavelength: np.ndarray, pixel_wavelength: np.ndarray,
               model_resolving_power: float = np.inf, n_sigma: float = 5.0) -> sparse.csr_matrix:
    """Sparse (n_pixels, n_model) matrix: Gaussian LSF convolution + resampling.

    Row j holds the normalised weights of the model samples within ``n_sigma`` of pixel j
    (weights = Gaussian x model-sample width), so a flat spectrum stays flat.
    """
    model_wavelength = np.asarray(model_wavelength, dtype=float)
    pixel_wavelength = np.asarray(pixel_wavelength, dtype=float)
    if pixel_wavelength[0] < model_wavelength[0] or pixel_wavelength[-1] > model_wavelength[-1]:
        raise ValueError("model grid does not cover the pixel grid")
    sigma = lsf_sigma_angstrom(pixel_wavelength, model_resolving_power)
    step = np.gradient(model_wavelength)
    centre = np.searchsorted(model_wavelength, pixel_wavelength)
    half = int(np.ceil(n_sigma * np.max(sigma / np.interp(pixel_wavelength, model_wavelength, step))))
    offsets = np.arange(-half, half + 1)
    cols = centre[:, None] + offsets[None, :]
    valid = (cols >= 0) & (cols < model_wavelength.size)
    cols = np.clip(cols, 0, model_wavelength.size - 1)
    delta = model_wavelength[cols] - pixel_wavelength[:, None]
    weights = np.exp(-0.5 * (delta / sigma[:, None]) ** 2) * step[cols]
    weights[~valid | (np.abs(delta) > n_sigma * sigma[:, None])] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    rows = np.repeat(np.arange(pixel_wavelength.size), offsets.size)
    matrix = sparse.csr_matrix((weights.ravel(), (rows, cols.ravel())),
                               shape=(pixel_wavelength.size, model_wavelength.size))
    matrix.eliminate_zeros()
    return matrix.astype(np.float32)


def resolution_diagonals(pixel_wavelength: np.ndarray, n_diagonals: int = 11) -> np.ndarray:
    """(n_diagonals, n_pixels) float32 band-diagonal resolution matrix of DESI's LSF on its
    own pixels (as in coadd RESOLUTION HDUs, one spectrum's worth), columns summing to 1."""
    sigma_pix = lsf_sigma_angstrom(pixel_wavelength) / WAVELENGTH_STEP_ANGSTROM
    offsets = np.arange(n_diagonals) - n_diagonals // 2
    kernel = np.exp(-0.5 * (offsets[:, None] / sigma_pix[None, :]) ** 2)
    return (kernel / kernel.sum(axis=0, keepdims=True)).astype(np.float32)


def doppler_shift(flux: np.ndarray, grid_resolution: float, vrad_kms: np.ndarray,
                  fill: float = 1.0) -> np.ndarray:
    """Shift spectra sampled on a ln-uniform grid (d ln lambda = 1/``grid_resolution``) by
    radial velocities (km/s, positive = receding: lines move red by lambda v/c).

    Linear interpolation between neighbouring samples; samples shifted in from beyond the
    grid edge take ``fill``. Returns float32 of ``flux``'s shape.
    """
    flux = np.asarray(flux, dtype=np.float32)
    n_pix = flux.shape[1]
    shift = np.log1p(np.asarray(vrad_kms, dtype=float) / SPEED_OF_LIGHT_KMS) * grid_resolution
    whole = np.floor(shift).astype(np.int64)
    frac = (shift - whole).astype(np.float32)
    out = np.full(flux.shape, fill, dtype=np.float32)
    for row in range(flux.shape[0]):
        k, w = int(whole[row]), frac[row]
        # out[i] = (1 - w) flux[i - k] + w flux[i - k - 1]
        lo, hi = max(k + 1, 0), min(n_pix + k, n_pix)
        if hi <= lo:
            continue
        src = flux[row, lo - k:hi - k]
        prev = flux[row, lo - k - 1:hi - k - 1]
        out[row, lo:hi] = src + w * (prev - src)
    return out


def planck_shape(wavelength: np.ndarray, teff: np.ndarray) -> np.ndarray:
    """Black-body B_lambda(Teff) normalised to 1 at 6,400 A, (n_stars, n_pixels) float32."""
    hc_over_k = 1.4387769e8  # Angstrom K
    wavelength = np.asarray(wavelength, dtype=np.float32)[None, :]
    teff = np.asarray(teff, dtype=np.float32)[:, None]
    ratio = (np.float32(6400.0) / wavelength) ** 5
    return ratio * np.expm1(np.float32(hc_over_k / 6400.0) / teff) / np.expm1(
        np.float32(hc_over_k) / (wavelength * teff))


def extinction_factor(wavelength: np.ndarray, ebv: np.ndarray, r_v: float = 3.1) -> np.ndarray:
    """10^(-0.4 A_lambda) with A_lambda = R_V E(B-V) (5,500 / lambda)^1.3 (a smooth
    power-law approximation of a Milky Way curve), (n_stars, n_pixels) float32."""
    curve = (r_v * (5500.0 / np.asarray(wavelength, dtype=float)) ** 1.3).astype(np.float32)
    return np.exp(np.float32(-0.4 * np.log(10.0)) * np.asarray(ebv, np.float32)[:, None] * curve[None, :])


def flux_scale(g_mag: np.ndarray) -> np.ndarray:
    """f_lambda near 6,400 A (1e-17 erg/s/cm^2/A) of a star of Gaia G magnitude (Vega-like
    zero point 2.5e-9 erg/s/cm^2/A)."""
    return 2.5e8 * 10.0 ** (-0.4 * np.asarray(g_mag, dtype=float))


WIGGLE_PERIODS_ANGSTROM = (220.0, 310.0, 430.0, 600.0, 850.0)


def calibration_wiggles(wavelength: np.ndarray, n_stars: int, rng: np.random.Generator,
                        amplitude: float = 0.02) -> np.ndarray:
    """Smooth multiplicative flux-calibration errors, (n_stars, n_pixels) float32: random
    combinations of sines and cosines of 220-850 A periods, rms ~``amplitude``."""
    wavelength = np.asarray(wavelength, dtype=float)
    phase = 2 * np.pi * wavelength[None, :] / np.array(WIGGLE_PERIODS_ANGSTROM)[:, None]
    basis = np.concatenate([np.sin(phase), np.cos(phase)]).astype(np.float32)
    coeffs = rng.normal(0.0, amplitude / np.sqrt(len(WIGGLE_PERIODS_ANGSTROM)),
                        (n_stars, basis.shape[0])).astype(np.float32)
    return 1.0 + coeffs @ basis


def throughput(wavelength: np.ndarray) -> np.ndarray:
    """Relative end-to-end throughput (peak 1): low in the blue and at the red end."""
    wavelength = np.asarray(wavelength, dtype=float)
    return np.clip(np.exp(-(((wavelength - 7000.0) / 3200.0) ** 2)), 0.05, 1.0)


SKY_LINES_ANGSTROM: tuple[float, ...] = (5578.9, 5891.6, 5897.6, 6302.0, 6365.5)
"""Bright atomic sky lines (vacuum A); OH lines redward of 6,800 A are added by
:func:`sky_spectrum` from a fixed pseudo-random list."""


def sky_spectrum(wavelength: np.ndarray, seed: int = 20_210_514) -> np.ndarray:
    """Sky brightness per pixel in flux units (1e-17 erg/s/cm^2/A): a faint continuum plus
    bright emission lines (atomic lines and a fixed forest of OH lines in the R and Z arms,
    stronger towards the red), each with DESI's LSF. Deterministic."""
    wavelength = np.asarray(wavelength, dtype=float)
    sky = np.full(wavelength.size, 0.6)
    rng = np.random.default_rng(seed)
    oh = np.sort(rng.uniform(6800.0, 9824.0, 160))
    oh_strength = rng.lognormal(np.log(15.0), 0.8, oh.size) * (oh / 7000.0) ** 3
    lines = np.concatenate([np.array(SKY_LINES_ANGSTROM), oh])
    strength = np.concatenate([np.array([60.0, 12.0, 10.0, 25.0, 8.0]), oh_strength])
    sigma = lsf_sigma_angstrom(lines)
    for centre, amp, sig in zip(lines, strength, sigma):
        near = np.abs(wavelength - centre) < 6 * sig
        sky[near] += amp * np.exp(-0.5 * ((wavelength[near] - centre) / sig) ** 2)
    return sky


@dataclass
class InstrumentSettings:
    """Knobs of :func:`observe` (``mock_survey.instrument`` parameters)."""

    wiggle_amplitude: float = 0.02
    arm_step_sigma: float = 0.015
    photon_fraction: float = 0.7
    """Share of the variance (at the R-arm median) from the star's photons; the rest is
    sky and read noise."""
    sky_residual_fraction: float = 0.02
    """Sky-subtraction residual at sky lines, as a fraction of the sky, not in IVAR."""
    cosmics_per_arm: float = 2.0
    bad_columns_per_arm: int = 2
    bad_column_fraction: float = 0.25


def observe(normalised_flux: np.ndarray, model_grid_resolution: float,
            lsf: dict[str, sparse.csr_matrix], vrad_kms: np.ndarray, teff: np.ndarray,
            g_mag: np.ndarray, ebv: np.ndarray, snr_r: np.ndarray,
            rng: np.random.Generator, settings: InstrumentSettings | None = None,
            bad_columns: dict[str, np.ndarray] | None = None,
            dead_arm: np.ndarray | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Turn rest-frame normalised model spectra into DESI B/R/Z flux, ivar and mask.

    Args:
        normalised_flux: (n, n_model) on the model's ln-uniform grid.
        model_grid_resolution: 1 / d ln(lambda) of that grid.
        lsf: ``{arm: lsf_matrix(...)}``.
        vrad_kms, teff, g_mag, ebv: per star (km/s, K, mag, mag).
        snr_r: target median S/N per pixel of the R arm (noiseless model).
        bad_columns: ``{arm: pixel indices}`` of bad CCD columns (hit a random
            ``bad_column_fraction`` of the spectra).
        dead_arm: (n,) arm letter or '' per star: that arm's pixels are all NODATA
            (fibres with a bad amplifier).

    Returns:
        ``{arm: {"flux", "ivar", "mask", "model"}}``; ``model`` is the noiseless flux.
        Noise is Gaussian with variance exactly 1/ivar where ivar > 0.
    """
    settings = settings or InstrumentSettings()
    n = normalised_flux.shape[0]
    shifted = doppler_shift(normalised_flux, model_grid_resolution, vrad_kms)
    scale = flux_scale(g_mag)
    shifted_t = np.ascontiguousarray(shifted.T)  # C-order multivector: fast sparse product
    arms: dict[str, dict[str, np.ndarray]] = {}
    for arm in ARMS:
        wave = arm_wavelength(arm)
        lines = np.asarray(lsf[arm].astype(np.float32, copy=False) @ shifted_t).T
        continuum = planck_shape(wave, teff) * extinction_factor(wave, ebv)
        continuum *= scale.astype(np.float32)[:, None]
        systematics = calibration_wiggles(wave, n, rng, settings.wiggle_amplitude)
        systematics *= (1.0 + rng.normal(0.0, settings.arm_step_sigma, (n, 1))).astype(np.float32)
        model = lines * continuum * systematics
        arms[arm] = {"model": model}

    # Noise: variance = k (F / T + B / T^2) with k per star set by the R-arm S/N target.
    wave_r = arm_wavelength("R")
    t_r = throughput(wave_r)
    sky_r = sky_continuum_level(arms["R"]["model"], settings.photon_fraction)
    f_r = arms["R"]["model"]
    var_unit = np.maximum(f_r, 0) / t_r.astype(np.float32) + (sky_r[:, None] / t_r**2).astype(np.float32)
    snr_unit = np.median(f_r / np.sqrt(var_unit), axis=1).astype(float)
    k = (snr_unit / np.maximum(snr_r, 0.1)) ** 2
    for arm in ARMS:
        wave = arm_wavelength(arm)
        model = arms[arm]["model"]
        sky = _cached_sky(arm)
        sky_weight = (sky / sky.min()).astype(np.float32)  # 1 in the continuum, >> 1 on lines
        inv_t = (1.0 / throughput(wave)).astype(np.float32)
        k32 = k.astype(np.float32)[:, None]
        variance = k32 * (np.maximum(model, 0) * inv_t
                          + sky_r.astype(np.float32)[:, None] * (sky_weight * inv_t**2))
        sigma = np.sqrt(variance)
        flux = model + sigma * rng.standard_normal(model.shape, dtype=np.float32)
        # sky-subtraction residuals at bright sky lines (not described by IVAR)
        line_pixels = np.flatnonzero(sky_weight > 3.0)
        flux[:, line_pixels] += (settings.sky_residual_fraction * sigma[:, line_pixels]
                                 * np.sqrt(sky_weight[line_pixels])
                                 * rng.standard_normal((n, line_pixels.size), dtype=np.float32))
        ivar = 1.0 / variance
        mask = np.zeros(model.shape, dtype=np.int32)
        _add_cosmics(flux, ivar, mask, sigma, rng, settings.cosmics_per_arm)
        if bad_columns is not None and arm in bad_columns and len(bad_columns[arm]):
            hit = rng.random(n) < settings.bad_column_fraction
            rows = np.flatnonzero(hit)
            cols = np.asarray(bad_columns[arm])
            mask[np.ix_(rows, cols)] |= (1 << SPECMASK_BITS["ALLBADPIX"]) | (1 << SPECMASK_BITS["SOMEBADPIX"])
        if dead_arm is not None:
            dead = np.asarray(dead_arm) == arm
            mask[dead] |= 1 << SPECMASK_BITS["NODATA"]
        bad = mask != 0
        cosmic = (mask & (1 << SPECMASK_BITS["COSMIC"])) != 0
        ivar[bad] = 0.0
        flux[bad & ~cosmic] = 0.0
        arms[arm] = {"flux": flux.astype(np.float32), "ivar": ivar.astype(np.float32),
                     "mask": mask, "model": arms[arm]["model"]}
    return arms


@functools.lru_cache(maxsize=8)
def _cached_sky(arm: str) -> np.ndarray:
    return sky_spectrum(arm_wavelength(arm))


def sky_continuum_level(model_r: np.ndarray, photon_fraction: float) -> np.ndarray:
    """Background level B (flux units) such that the star's photons make
    ``photon_fraction`` of the variance at the R-arm median flux."""
    median = np.median(np.maximum(model_r, 1e-6), axis=1)
    return median * (1.0 - photon_fraction) / photon_fraction * np.median(throughput(arm_wavelength("R")))


def _add_cosmics(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, sigma: np.ndarray,
                 rng: np.random.Generator, per_spectrum: float) -> None:
    """Cosmic-ray hits: a few 1-3 pixel spikes per spectrum, COSMIC bit set (in place)."""
    n, n_pix = flux.shape
    counts = rng.poisson(per_spectrum, n)
    rows = np.repeat(np.arange(n), counts)
    if rows.size == 0:
        return
    starts = rng.integers(0, n_pix - 3, rows.size)
    widths = rng.integers(1, 4, rows.size)
    for offset in range(3):
        use = offset < widths
        r, c = rows[use], starts[use] + offset
        flux[r, c] += sigma[r, c] * rng.uniform(10.0, 200.0, r.size)
        mask[r, c] |= 1 << SPECMASK_BITS["COSMIC"]


def sky_fibre_spectra(n: int, rng: np.random.Generator, noise_level: float = 0.5
                      ) -> dict[str, dict[str, np.ndarray]]:
    """Sky fibres after sky subtraction: zero signal, noise from the sky (larger on sky
    lines), IVAR matching the noise. ``noise_level`` is the continuum sigma (flux units)."""
    out = {}
    for arm in ARMS:
        wave = arm_wavelength(arm)
        sky = _cached_sky(arm)
        sigma = noise_level * np.sqrt(sky / sky.min()) / throughput(wave)
        sigma = np.broadcast_to(sigma, (n, wave.size))
        flux = (sigma * rng.standard_normal((n, wave.size))).astype(np.float32)
        out[arm] = {"flux": flux, "ivar": (1.0 / sigma**2).astype(np.float32),
                    "mask": np.zeros((n, wave.size), dtype=np.int32)}
    return out
