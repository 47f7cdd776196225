"""Fit a bundle's error calibration (``nn.calibration``) on the validation split: its
spectra as they are and degraded to lower S/N, predicted with the bundle, scored against
their reference labels. The test split is never used."""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.defaults import with_defaults
from desi_abundances.nn.bundle import ModelBundle
from desi_abundances.nn.calibration import DEGRADED_SNR, degrade, fit_scales
from desi_abundances.nn.predict import predict_labels
from desi_abundances.spectra import Spectra

logger = logging.getLogger(__name__)

DEFAULT_ERROR_CALIBRATION: dict[str, Any] = {"enabled": True, "seed": 11,
                                             "snr": list(DEGRADED_SNR)}
"""Defaults of ``params:training.error_calibration``."""


def validation_predictions(bundle: ModelBundle, validation: Spectra, snrs: list[float],
                           seed: int) -> pd.DataFrame:
    """Predictions (with the error parts) of the validation spectra, as they are and degraded
    to each of ``snrs``, with ``ref_<label>``, ``ref_<label>_err`` and ``snr``."""
    network = bundle.network()
    rng = np.random.default_rng(seed)
    parts = []
    for snr in [None, *snrs]:
        spectra = validation if snr is None else degrade(validation, float(snr), rng)
        table = predict_labels(bundle, spectra, network=network, check=False, error_parts=True)
        table["snr"] = spectra.meta["snr"].to_numpy(np.float64)
        for label in bundle.label_names:
            table[f"ref_{label}"] = spectra.meta[label].to_numpy(np.float64)
            table[f"ref_{label}_err"] = spectra.meta[f"{label}_err"].to_numpy(np.float64)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def calibrate_bundle(bundle: ModelBundle, validation: Spectra,
                     settings: dict[str, Any] | None = None) -> ModelBundle:
    """``bundle`` with ``error_calibration`` fitted on ``validation`` (a copy; unchanged when
    disabled, or when the network has no spectrum model to propagate noise through)."""
    settings = with_defaults(DEFAULT_ERROR_CALIBRATION, settings, "error_calibration")
    if not settings["enabled"] or not bundle.architecture.get("refinement_pixels", 0):
        return bundle
    uncalibrated = dataclasses.replace(bundle, error_calibration={})
    table = validation_predictions(uncalibrated, validation, settings["snr"], settings["seed"])
    scales = {"net_scale": [], "model_scale": [], "epistemic_scale": []}
    for label in bundle.label_names:
        fitted = fit_scales(
            (table[label] - table[f"ref_{label}"]).to_numpy(),
            table[f"{label}_err_net"].to_numpy(), table[f"{label}_err_model"].to_numpy(),
            table["rchi2"].to_numpy(), np.nan_to_num(table[f"ref_{label}_err"].to_numpy()),
            table["snr"].to_numpy(), leverage=table["leverage"].to_numpy())
        for key, value in zip(scales, fitted):
            scales[key].append(round(value, 4))
    logger.info("error calibration on %d validation spectra (with degraded copies), (a, c, m) "
                "per label: %s", len(table),
                {label: values for label, *values in zip(bundle.label_names, *scales.values())})
    return dataclasses.replace(bundle, error_calibration=scales)
