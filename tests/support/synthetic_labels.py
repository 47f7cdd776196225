"""Tiny labelled training sets: normalised spectra whose line depths depend on the labels."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.spectra import DEFAULT_PREPROCESSING, Spectra, preprocessing_settings

LABELS = ["teff", "fe_h", "mg_fe"]


def make_labelled_spectra(n_spectra: int = 200, n_pixels: int = 120, snr: float = 100.0,
                          seed: int = 0, missing_fraction: float = 0.1) -> Spectra:
    """Spectra on a short grid with lines whose depths are smooth functions of the labels."""
    rng = np.random.default_rng(seed)
    teff = rng.uniform(4000, 6000, n_spectra)
    fe_h = rng.uniform(-1.0, 0.3, n_spectra)
    mg_fe = rng.uniform(-0.1, 0.4, n_spectra)
    wavelength = 5000.0 + 0.8 * np.arange(n_pixels)
    centres = wavelength[10:-10:12]
    kinds = np.arange(centres.size) % 3
    x = np.column_stack([(teff - 5000) / 1000, fe_h, mg_fe])
    depth = 0.3 + 0.15 * x[:, [0]] * (kinds == 0) + 0.2 * (x[:, [1]] + (kinds == 2) * x[:, [2]])
    depth = np.clip(depth * (1 + 0.3 * np.tanh(x[:, [0]])), 0.02, 0.9)
    profiles = np.exp(-0.5 * ((wavelength[None, :] - centres[:, None]) / 1.2) ** 2)
    flux = 1.0 - depth @ profiles
    flux = (flux + rng.normal(0, 1 / snr, flux.shape)).astype(np.float32)
    ivar = np.full(flux.shape, snr**2, np.float32)
    mask = rng.random(flux.shape) < 0.01
    flux[mask], ivar[mask] = 1.0, 0.0
    meta = pd.DataFrame({"TARGETID": np.arange(n_spectra, dtype=np.int64) + 10,
                         "snr": np.full(n_spectra, snr), "vrad_kms": np.zeros(n_spectra),
                         "rest_frame_ok": np.ones(n_spectra, bool)})
    errors = {"teff": 50.0, "fe_h": 0.02, "mg_fe": 0.03}
    for name, values in zip(LABELS, (teff, fe_h, mg_fe)):
        values = values.copy()
        values[rng.random(n_spectra) < missing_fraction] = np.nan
        meta[name] = values
        meta[f"{name}_err"] = np.where(np.isfinite(values), errors[name], np.nan)
    meta.attrs["preprocessing"] = preprocessing_settings(DEFAULT_PREPROCESSING)
    meta.attrs["is_mock"] = True
    return Spectra(wavelength=wavelength, flux=flux, ivar=ivar, mask=mask, meta=meta)
