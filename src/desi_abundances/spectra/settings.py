"""Preprocessing settings (``params:feature_engineering.preprocessing``, stored in the model
bundle) and the thread count of the compiled passes."""
from __future__ import annotations

import os
from typing import Any

from desi_abundances.defaults import with_defaults

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


PREPROCESS_THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
    os.cpu_count() or 1)
"""Threads of the compiled :func:`preprocess` and :func:`median_snr` (all usable cores;
results do not depend on it). Read at call time, so a test or a caller may change it."""
