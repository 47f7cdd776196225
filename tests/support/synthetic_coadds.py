"""Synthetic DESI coadds for the feature-engineering tests: a flat continuum times a few
Gaussian absorption lines times a smooth flux-calibration wiggle, with noise and masks."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.desi.grids import ARMS, arm_wavelength
from desi_abundances.physics import SPEED_OF_LIGHT_KMS
from desi_abundances.spectra import ArmSpectra, CoaddSpectra

LINE_CENTRES_ANGSTROM = (4300.0, 5175.0, 6563.0, 8542.0, 8662.0)


def line_profile(wavelength: np.ndarray, vrad_kms: np.ndarray, depth: float = 0.5,
                 width: float = 1.5) -> np.ndarray:
    """(n, n_pix) product of Gaussian absorption lines shifted by vrad_kms."""
    shift = (1.0 + np.asarray(vrad_kms)[:, None] / SPEED_OF_LIGHT_KMS)
    profile = np.ones((len(vrad_kms), wavelength.size))
    for centre in LINE_CENTRES_ANGSTROM:
        profile *= 1 - depth * np.exp(-0.5 * ((wavelength[None] - centre * shift) / width) ** 2)
    return profile


def make_coadd(n_spectra: int = 8, snr: float = 200.0, wiggle_amplitude: float = 0.0,
               vrad_kms: np.ndarray | None = None, seed: int = 0, mask_fraction: float = 0.0,
               arm_steps: bool = False) -> CoaddSpectra:
    rng = np.random.default_rng(seed)
    vrad = np.zeros(n_spectra) if vrad_kms is None else np.asarray(vrad_kms, float)
    arms = {}
    for index, arm in enumerate(ARMS):
        wave = arm_wavelength(arm)
        level = 100.0 * (1.0 + 0.3 * index if arm_steps else 1.0)
        phase = rng.uniform(0, 2 * np.pi, size=(n_spectra, 1))
        wiggle = 1.0 + wiggle_amplitude * np.sin(2 * np.pi * wave[None] / 300.0 + phase)
        true = level * wiggle * line_profile(wave, vrad)
        sigma = level / snr
        flux = (true + rng.normal(0, sigma, true.shape)).astype(np.float32)
        ivar = np.full(true.shape, 1.0 / sigma**2, np.float32)
        mask = np.zeros(true.shape, np.int32)
        if mask_fraction:
            bad = rng.random(true.shape) < mask_fraction
            mask[bad] = 4
            flux[rng.random(true.shape) < mask_fraction] = np.nan
            ivar[rng.random(true.shape) < mask_fraction] = 0.0
        arms[arm] = ArmSpectra(wavelength=wave, flux=flux, ivar=ivar, mask=mask)
    fibermap = pd.DataFrame({"TARGETID": np.arange(1000, 1000 + n_spectra, dtype=np.int64)})
    return CoaddSpectra(arms=arms, fibermap=fibermap, header={"MOCK": True})


