"""From a labelled training set to a :class:`ModelBundle`: assemble standardised arrays, fit
the label scaling, train, measure the validation scatter and the OOD threshold."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.maths.robust import robust_std
from desi_abundances.nn import spectrum_model
from desi_abundances.nn.bundle import ModelBundle, current_versions
from desi_abundances.nn.network import architecture_for
from desi_abundances.nn.predict import MAX_INPUT_NOISE, input_distance, predict_labels, standardise
from desi_abundances.nn.training import (
    TrainingArrays,
    TrainingResult,
    fit_feature_density,
    train_network,
)
from desi_abundances.spectra import Spectra, preprocessing_settings

logger = logging.getLogger(__name__)


def split_rows(spectra: Spectra, data_split: pd.DataFrame, name: str) -> np.ndarray:
    """Row indices of ``spectra`` whose TARGETID is in split ``name``."""
    ids = data_split.loc[data_split["split"] == name, "TARGETID"].to_numpy()
    return np.flatnonzero(np.isin(spectra.meta["TARGETID"].to_numpy(), ids))


def label_scaling(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offset (median) and scale (standard deviation) per label column, NaN-aware; labels
    with fewer than two values get offset 0 and scale 1."""
    offset = np.zeros(labels.shape[1])
    scale = np.ones(labels.shape[1])
    for j in range(labels.shape[1]):  # per label (a few dozen), not per spectrum
        values = labels[:, j][np.isfinite(labels[:, j])]
        if values.size >= 2 and np.std(values) > 0:
            offset[j], scale[j] = np.median(values), np.std(values)
    return offset, scale


def training_arrays(spectra: Spectra, label_names: Sequence[str], median: np.ndarray,
                    iqr: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> TrainingArrays:
    """Standardised network inputs, their noise, and standardised labels of ``spectra``."""
    inputs = standardise(spectra.flux, spectra.mask, median, iqr)
    with np.errstate(divide="ignore"):
        sigma = np.where(spectra.mask, 0.0, 1.0 / np.sqrt(spectra.ivar)) / iqr
    noise = np.minimum(sigma, MAX_INPUT_NOISE).astype(np.float32)
    meta = spectra.meta
    labels = np.column_stack([meta[name].to_numpy(np.float64) for name in label_names])
    errors = np.column_stack([meta[f"{name}_err"].to_numpy(np.float64) for name in label_names])
    return TrainingArrays(
        inputs=inputs,
        input_noise=noise,
        labels=((labels - offset) / scale).astype(np.float32),
        label_errors=(errors / scale).astype(np.float32),
    )


def residual_scatter(predictions: pd.DataFrame, truth: pd.DataFrame,
                     label_names: Sequence[str]) -> dict[str, float]:
    """``<label>_residual_std``: standard deviation of prediction - truth over valid labels
    (K or dex), and ``<label>_residual_mad``: 1.4826 x median absolute deviation."""
    metrics = {}
    for name in label_names:
        residual = predictions[name].to_numpy() - truth[name].to_numpy()
        residual = residual[np.isfinite(residual)]
        if residual.size < 2:
            continue
        metrics[f"{name}_residual_std"] = float(np.std(residual))
        metrics[f"{name}_residual_mad"] = robust_std(residual)
    return metrics


def fit_label_model(training_spectra: Spectra, data_split: pd.DataFrame,
                    pixel_standardisation: pd.DataFrame, label_names: Sequence[str],
                    settings: dict[str, Any]) -> tuple[ModelBundle, TrainingResult, dict]:
    """Train the label network on the train split, early-stopped on the validation split.

    Args:
        training_spectra: ``feature_engineering`` output (meta has the labels and errors).
        data_split: TARGETID, split.
        pixel_standardisation: wavelength, median, iqr (fitted on the train split).
        label_names: ``params:labels``.
        settings: ``params:training`` (``architecture``, ``optimisation``, ``ood_percentile``).

    Returns:
        (bundle, training result with loss curves, validation metrics incl.
        ``<label>_residual_std``).
    """
    label_names = list(label_names)
    missing = [c for n in label_names for c in (n, f"{n}_err")
               if c not in training_spectra.meta.columns]
    if missing:
        raise KeyError(f"training_spectra meta lacks label column(s) {missing}")
    if not np.allclose(pixel_standardisation["wavelength"].to_numpy(),
                       training_spectra.wavelength):
        raise ValueError("pixel_standardisation wavelengths differ from training_spectra's")
    median = pixel_standardisation["median"].to_numpy(np.float32)
    iqr = pixel_standardisation["iqr"].to_numpy(np.float32)
    train = training_spectra.select(split_rows(training_spectra, data_split, "train"))
    validation = training_spectra.select(split_rows(training_spectra, data_split, "validation"))
    if train.n_spectra == 0 or validation.n_spectra == 0:
        raise ValueError(f"empty split: {train.n_spectra} train, {validation.n_spectra} "
                         f"validation spectra match data_split")
    train_labels = np.column_stack([train.meta[n].to_numpy(np.float64) for n in label_names])
    offset, scale = label_scaling(train_labels)
    architecture = architecture_for(training_spectra.wavelength.size, len(label_names),
                                    settings.get("architecture"))
    train_arrays = training_arrays(train, label_names, median, iqr, offset, scale)
    model_settings = spectrum_model.spectrum_model_settings(settings.get("spectrum_model"))
    quadratic = None
    if architecture["refinement_pixels"] > 0 or model_settings["n_spectra"] > 0:
        label_index = spectrum_model.modelled_labels(train_arrays.labels,
                                                     model_settings["min_label_coverage"])
        if label_index.size == 0:
            logger.warning("no label is known for enough training stars to fit the quadratic "
                           "spectrum model: training without the refinement step")
        else:
            quadratic = spectrum_model.fit_quadratic_model(
                train_arrays, label_index, model_settings["ridge"],
                int(model_settings["imputation_rounds"]))
            logger.info("quadratic spectrum model: labels %s, %d training stars with all of them",
                        [label_names[i] for i in label_index],
                        int(np.all(np.isfinite(train_arrays.labels[:, label_index]), 1).sum()))
        if architecture["refinement_pixels"] > 0:
            architecture["refinement_labels"] = [int(index) for index in label_index]
    simulated = None
    if model_settings["n_spectra"] > 0 and quadratic is not None:
        simulated = spectrum_model.simulate_training_arrays(
            quadratic, train_arrays, int(model_settings["n_spectra"]), model_settings["jitter"],
            int(model_settings["seed"]), int(model_settings["block_rows"]))
    result = train_network(
        architecture,
        train_arrays,
        training_arrays(validation, label_names, median, iqr, offset, scale),
        settings.get("optimisation", {}),
        extra=simulated,
        spectrum_model=quadratic,
    )
    fit_feature_density(result.network, train_arrays)
    distances = input_distance(train.flux, train.ivar, train.mask, median, iqr)
    finite = np.isfinite(train_labels)
    with np.errstate(all="ignore"):
        label_min = np.where(finite.any(0), np.nanmin(np.where(finite, train_labels, np.inf), 0),
                             np.nan)
        label_max = np.where(finite.any(0), np.nanmax(np.where(finite, train_labels, -np.inf), 0),
                             np.nan)
    preprocessing = training_spectra.meta.attrs.get("preprocessing")
    bundle = ModelBundle(
        state_dict={k: v.detach().cpu().clone() for k, v in result.network.state_dict().items()},
        architecture=architecture,
        label_names=label_names,
        wavelength=np.asarray(training_spectra.wavelength, np.float64),
        pixel_median=median,
        pixel_iqr=iqr,
        label_offset=offset,
        label_scale=scale,
        label_min=label_min,
        label_max=label_max,
        label_n_train=finite.sum(axis=0).astype(np.int64),
        preprocessing=preprocessing_settings(preprocessing),
        ood_threshold=float(np.nanpercentile(distances, settings.get("ood_percentile", 99.5))),
        versions=current_versions(),
        is_mock=bool(training_spectra.meta.attrs.get("is_mock", False)),
    )
    predictions = predict_labels(bundle, validation, network=result.network)
    metrics = residual_scatter(predictions, validation.meta, label_names)
    metrics.update({
        "best_epoch": float(result.best_epoch),
        "epochs_run": float(result.epochs_run),
        "training_seconds": float(result.seconds),
        "best_validation_loss": float(min(result.validation_loss)),
        "n_train": float(train.n_spectra),
        "n_validation": float(validation.n_spectra),
    })
    bundle.metrics = dict(metrics)
    return bundle, result, metrics
