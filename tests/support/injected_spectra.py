"""Spectra that are not a normal single star, made from ordinary coadds (tests and the
fit-quality measurements of issue 15): a double-lined binary (two stars' spectra added, the
second shifted in velocity) and noise added to reach a lower S/N."""
from __future__ import annotations

import numpy as np

from desi_abundances.physics import SPEED_OF_LIGHT_KMS
from desi_abundances.spectra import ArmSpectra, CoaddSpectra


def shifted(wavelength: np.ndarray, flux: np.ndarray, dv_kms: float) -> np.ndarray:
    """``flux`` (n_pixels,) moved by ``dv_kms`` (positive: redder), linear interpolation."""
    return np.interp(wavelength / (1.0 + dv_kms / SPEED_OF_LIGHT_KMS), wavelength, flux)


def composite(coadd: CoaddSpectra, primary: np.ndarray, secondary: np.ndarray,
              flux_ratio: np.ndarray, dv_kms: np.ndarray) -> CoaddSpectra:
    """Coadd of double-lined binaries, one per ``primary`` row: that spectrum plus spectrum
    ``secondary`` scaled to ``flux_ratio`` x the primary's median flux (per arm) and shifted
    by ``dv_kms`` relative to it; variances add. FIBERMAP rows of the primaries."""
    primary, secondary = np.atleast_1d(primary), np.atleast_1d(secondary)
    flux_ratio = np.broadcast_to(flux_ratio, primary.shape)
    dv_kms = np.broadcast_to(dv_kms, primary.shape)
    arms = {}
    for name, arm in coadd.arms.items():
        flux = np.empty((primary.size, arm.wavelength.size), np.float32)
        ivar = np.empty_like(flux)
        for k, (i, j) in enumerate(zip(primary, secondary)):
            f1, f2 = arm.flux[i].astype(np.float64), arm.flux[j].astype(np.float64)
            scale = flux_ratio[k] * np.median(f1) / max(np.median(f2), 1e-30)
            with np.errstate(divide="ignore"):
                var1 = np.where(arm.ivar[i] > 0, 1.0 / arm.ivar[i], np.inf)
                var2 = np.where(arm.ivar[j] > 0, 1.0 / arm.ivar[j], 1e30)
            variance = var1 + scale**2 * shifted(arm.wavelength, var2, dv_kms[k])
            flux[k] = f1 + scale * shifted(arm.wavelength, f2, dv_kms[k])
            ivar[k] = np.where(np.isfinite(variance) & (variance < 1e29), 1.0 / variance, 0.0)
        arms[name] = ArmSpectra(arm.wavelength, flux, ivar, arm.mask[primary] | arm.mask[secondary])
    return CoaddSpectra(arms, coadd.fibermap.iloc[primary].reset_index(drop=True),
                        dict(coadd.header))


def with_noise(coadd: CoaddSpectra, row: int, snr: float, rng: np.random.Generator
               ) -> CoaddSpectra:
    """A one-spectrum coadd: spectrum ``row`` with Gaussian noise added so that its median
    S/N per pixel is about ``snr`` in every arm (ivar lowered to match)."""
    arms = {}
    for name, arm in coadd.arms.items():
        flux = arm.flux[row].astype(np.float64)
        sigma = np.abs(np.median(flux)) / snr
        with np.errstate(divide="ignore"):
            old = np.where(arm.ivar[row] > 0, 1.0 / arm.ivar[row], np.inf)
        extra = np.sqrt(np.maximum(sigma**2 - np.where(np.isfinite(old), old, 0.0), 0.0))
        noisy = flux + extra * rng.standard_normal(flux.size)
        variance = np.maximum(old, sigma**2)
        ivar = np.where(np.isfinite(variance), 1.0 / variance, 0.0)
        arms[name] = ArmSpectra(arm.wavelength, noisy[None].astype(np.float32),
                                ivar[None].astype(np.float32), arm.mask[row][None])
    return CoaddSpectra(arms, coadd.fibermap.iloc[[row]].reset_index(drop=True),
                        dict(coadd.header))
