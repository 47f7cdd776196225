"""Labels with uncertainties from preprocessed spectra and a :class:`ModelBundle`.

``predict_labels(bundle, spectra)`` is what evaluation and inference call; it refuses spectra
made on another grid or with other preprocessing settings (``check_compatible``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from desi_abundances.nn.binaries import COMPOSITE_COLUMNS, network_templates
from desi_abundances.nn.bundle import ModelBundle
from desi_abundances.nn.calibration import combined_error, epistemic_factor
from desi_abundances.nn.fit_quality import (
    CHI2_COLUMNS,
    arm_matrix,
    fisher_variance,
    fit_statistics,
    hessian_variance,
)
from desi_abundances.spectra import Spectra, kernels, preprocessing_settings

IQR_TO_SIGMA = 1.0 / 1.349
"""sigma of a Gaussian per unit interquartile range."""

MAX_INPUT_NOISE = 10.0
"""Cap of a pixel's noise sigma in input (IQR) units (augmentation and noise features)."""

PREPROCESSING_ATTR = "preprocessing"
"""Key of ``Spectra.meta.attrs`` holding the settings the spectra were made with."""


class IncompatibleSpectraError(ValueError):
    """Spectra were made on another grid or with other preprocessing than the bundle's."""


def check_compatible(bundle: ModelBundle, wavelength: np.ndarray,
                     settings: dict[str, Any] | None) -> None:
    """Refuse spectra the bundle was not trained for.

    Args:
        wavelength: the spectra's rest-frame grid, Angstrom.
        settings: the preprocessing settings they were made with (None: not checked).

    Raises:
        IncompatibleSpectraError: naming the mismatch (grid size/range, or the settings that
            differ with both values).
    """
    wavelength = np.asarray(wavelength, np.float64)
    expected = np.asarray(bundle.wavelength, np.float64)
    if wavelength.shape != expected.shape or not np.allclose(wavelength, expected, rtol=0,
                                                             atol=1e-4):
        raise IncompatibleSpectraError(
            f"spectra grid ({wavelength.size} px, {wavelength.min():.2f}-{wavelength.max():.2f} A)"
            f" differs from the model bundle's ({expected.size} px, {expected.min():.2f}-"
            f"{expected.max():.2f} A): preprocess them with spectra.preprocess and the "
            f"bundle's settings (bundle.preprocessing)"
        )
    if settings is None:
        return
    ours, theirs = preprocessing_settings(bundle.preprocessing), preprocessing_settings(settings)
    differ = {key: (theirs[key], ours[key]) for key in ours if theirs[key] != ours[key]}
    if differ:
        detail = ", ".join(f"{key}: spectra {a!r} vs bundle {b!r}" for key, (a, b) in differ.items())
        raise IncompatibleSpectraError(
            f"spectra were preprocessed with other settings than the model bundle ({detail}); "
            f"rerun spectra.preprocess with bundle.preprocessing"
        )


def standardise(flux: np.ndarray, mask: np.ndarray, median: np.ndarray,
                iqr: np.ndarray) -> np.ndarray:
    """Network inputs: (flux - median) / iqr per pixel, 0 (the median) at masked pixels."""
    inputs = (flux - median) / iqr
    inputs[mask] = 0.0
    return inputs.astype(np.float32, copy=False)


def input_inverse_variance(ivar: np.ndarray, mask: np.ndarray, iqr: np.ndarray) -> np.ndarray:
    """Inverse variance of each network input, (n, n_pixels) float32 in input units:
    ``ivar iqr^2``, at least ``1 / MAX_INPUT_NOISE^2`` (the cap training puts on the noise),
    0 at masked pixels. What a network with a refinement step reads beside the inputs."""
    scaled = np.maximum(ivar.astype(np.float64) * iqr.astype(np.float64) ** 2,
                        1.0 / MAX_INPUT_NOISE**2)
    return np.where(mask, 0.0, scaled).astype(np.float32)


def input_distance(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, median: np.ndarray,
                   iqr: np.ndarray) -> np.ndarray:
    """How unlike the training set a spectrum is, (n,): the mean over good pixels of
    ``(flux - median)^2 / (s^2 + 1 / ivar)`` with ``s = iqr / 1.349`` the training spread of
    the pixel. The noise term makes it comparable across S/N: a spectrum drawn from the
    training distribution scores about 1 or less whatever its S/N. NaN without good pixels.
    """
    spread = (iqr * IQR_TO_SIGMA) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = spread + np.where(mask, np.inf, 1.0 / ivar)
        term = np.where(mask, 0.0, (flux - median) ** 2 / variance)
    n_good = (~mask).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_good > 0, term.sum(axis=1) / n_good, np.nan)


def standardise_with_distance(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray,
                              median: np.ndarray, iqr: np.ndarray, with_ivar: bool = False
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(standardise(...), input_distance(...), input_inverse_variance(...) or None)`` of a
    block of spectra: one fused compiled pass (``spectra.kernels.standardise_and_distance``,
    ~4x faster, same values within float32 rounding as the numpy references). The inverse
    variances are computed only ``with_ivar``."""
    median = np.asarray(median, np.float32)
    iqr = np.asarray(iqr, np.float32)
    n = flux.shape[0]
    inputs = np.empty((n, median.size), np.float32)
    distance = np.empty(n, np.float64)
    input_ivar = np.empty((n if with_ivar else 0, median.size), np.float32)
    spread = ((iqr * IQR_TO_SIGMA) ** 2).astype(np.float32)
    iqr2 = (iqr.astype(np.float64) ** 2).astype(np.float32)
    kernels.standardise_and_distance(
        np.ascontiguousarray(flux, np.float32), np.ascontiguousarray(ivar, np.float32),
        np.ascontiguousarray(mask, bool), median, iqr, spread, inputs, distance,
        iqr2, np.float32(1.0 / MAX_INPUT_NOISE**2), input_ivar)
    return inputs, distance, (input_ivar if with_ivar else None)


def predict_labels(bundle: ModelBundle, spectra: Spectra, batch_size: int = 4096,
                   preprocessing: dict[str, Any] | None = None,
                   network: torch.nn.Module | None = None, check: bool = True,
                   error_parts: bool = False) -> pd.DataFrame:
    """Labels and their uncertainties for preprocessed spectra.

    Args:
        bundle: the trained model.
        spectra: output of ``spectra.preprocess`` (same grid as the bundle).
        batch_size: spectra per forward pass.
        preprocessing: the settings the spectra were made with; defaults to
            ``spectra.meta.attrs["preprocessing"]`` when present; checked against the bundle.
        network: a prebuilt ``bundle.network()`` to reuse across calls (optional).
        check: False skips ``check_compatible``, for a caller that made the spectra with the
            bundle's own settings and checked the bundle's grid once (``nn.adapter``).
        error_parts: also return ``<label>_err_net`` (the network's own error) and
            ``<label>_err_model`` (the spectrum model's noise propagation, NaN for labels it
            lacks), the two parts of a calibrated ``_err`` (``nn.calibration``).

    Returns:
        DataFrame row-matched to ``spectra``: TARGETID, ``<label>`` and ``<label>_err`` for
        every ``bundle.label_names`` (K for teff, dex otherwise; ``_err`` is the 1-sigma
        uncertainty: the network's own, or with ``bundle.error_calibration`` the calibrated
        combination of it and the spectrum model's, ``nn.calibration.combined_error``; both
        times the epistemic factor sqrt(1 + leverage)), ``input_distance`` (compare with
        ``bundle.ood_threshold``), ``leverage`` (of the last hidden features,
        ``nn.feature_density``; NaN for a network without one), ``rchi2``, ``rchi2_b``, ``rchi2_r``, ``rchi2_z`` (reduced
        chi-square of the spectrum model at the predicted labels, overall and per arm,
        ``nn.fit_quality``; NaN for a network without a refinement layer),
        ``composite_score`` and ``composite_dv_kms`` (a second star's lines in the residual and
        their velocity, ``nn.binaries``; NaN likewise). Labels are NaN for spectra with ``rest_frame_ok`` False
        (no usable velocity) or no good pixel, and for labels without training data.

    Raises:
        IncompatibleSpectraError: grid or preprocessing settings differ from the bundle's.
    """
    if check:
        if preprocessing is None:
            preprocessing = spectra.meta.attrs.get(PREPROCESSING_ATTR)
        check_compatible(bundle, spectra.wavelength, preprocessing)
    network = bundle.network() if network is None else network
    network.eval()
    median = np.asarray(bundle.pixel_median, np.float32)
    iqr = np.asarray(bundle.pixel_iqr, np.float32)
    n = spectra.n_spectra
    n_labels = len(bundle.label_names)
    mean = np.empty((n, n_labels), np.float32)
    log_variance = np.empty((n, n_labels), np.float32)
    distance = np.empty(n, np.float64)
    leverage = np.full(n, np.nan, np.float64)
    refinement = getattr(network, "refinement", None)
    with_ivar = refinement is not None
    chi2 = np.full((n, len(CHI2_COLUMNS)), np.nan, np.float32)
    model_variance = np.full((n, n_labels), np.nan, np.float32)
    composite = np.full((n, len(COMPOSITE_COLUMNS)), np.nan, np.float32)
    reuse = False
    if with_ivar:
        modelled = refinement.label_index.numpy()
        # the step's own J^T W J + damping I is fisher_variance's matrix when damping = 1
        reuse = refinement.damping == 1.0
        arms = torch.from_numpy(arm_matrix(np.asarray(bundle.wavelength)[
            refinement.pixel_index.numpy()]))
        templates = network_templates(refinement, bundle.wavelength, bundle.pixel_median,
                                      bundle.pixel_iqr)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            rows = slice(start, min(start + batch_size, n))
            inputs, distance[rows], input_ivar = standardise_with_distance(
                spectra.flux[rows], spectra.ivar[rows], spectra.mask[rows], median, iqr,
                with_ivar=with_ivar)
            outputs = network.outputs(
                torch.from_numpy(inputs),
                None if input_ivar is None else torch.from_numpy(input_ivar),
                with_hessian=with_ivar and reuse)
            out_mean = outputs.mean
            mean[rows] = out_mean.numpy()
            log_variance[rows] = outputs.log_variance.numpy()
            if outputs.leverage is not None:
                leverage[rows] = outputs.leverage.numpy()
            if with_ivar:
                ivar_block = torch.from_numpy(input_ivar)
                block_chi2, block_composite = fit_statistics(
                    refinement, torch.from_numpy(inputs), ivar_block, out_mean, arms, templates)
                chi2[rows], composite[rows] = block_chi2.numpy(), block_composite.numpy()
                block = model_variance[rows]
                block[:, modelled] = (hessian_variance(outputs.hessian) if reuse
                                      else fisher_variance(refinement, ivar_block)).numpy()
                model_variance[rows] = block
    offset = np.asarray(bundle.label_offset, np.float64)
    scale = np.asarray(bundle.label_scale, np.float64)
    values = offset + scale * mean
    errors = scale * np.exp(0.5 * log_variance.astype(np.float64))
    errors_model = scale * np.sqrt(model_variance.astype(np.float64))
    errors_net = errors.copy()
    calibration = getattr(bundle, "error_calibration", None) or {}
    if calibration:
        epistemic_scale = calibration.get("epistemic_scale", [1.0] * n_labels)
        for index in range(n_labels):
            errors[:, index] = combined_error(
                errors_net[:, index], errors_model[:, index], chi2[:, 0].astype(np.float64),
                calibration["net_scale"][index], calibration["model_scale"][index], leverage,
                epistemic_scale[index])
    else:
        errors *= epistemic_factor(leverage)[:, None]
    unusable = ~np.isfinite(distance)
    if "rest_frame_ok" in spectra.meta.columns:
        unusable |= ~spectra.meta["rest_frame_ok"].to_numpy(bool)
    untrained = np.asarray(bundle.label_n_train) <= 0
    for array in (values, errors, errors_net, errors_model):
        array[unusable] = np.nan
        array[:, untrained] = np.nan
    chi2[unusable] = np.nan
    leverage[unusable] = np.nan
    composite[unusable] = np.nan
    columns: dict[str, Any] = {"TARGETID": spectra.meta["TARGETID"].to_numpy()}
    for index, label in enumerate(bundle.label_names):
        columns[label] = values[:, index]
        columns[f"{label}_err"] = errors[:, index]
        if error_parts:
            columns[f"{label}_err_net"] = errors_net[:, index]
            columns[f"{label}_err_model"] = errors_model[:, index]
    columns["input_distance"] = distance
    columns["leverage"] = leverage
    for index, name in enumerate(CHI2_COLUMNS):
        columns[name] = chi2[:, index]
    for index, name in enumerate(COMPOSITE_COLUMNS):
        columns[name] = composite[:, index]
    return pd.DataFrame(columns)
