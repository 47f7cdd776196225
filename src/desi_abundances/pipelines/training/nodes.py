"""Nodes of the training pipeline (thin glue over ``nn.model``). Nothing is logged to MLflow
here: the outputs are MLflow datasets in ``catalog_training.yml``."""
from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from desi_abundances.evaluation import mlflow_names
from desi_abundances.evaluation.split import split_spectra
from desi_abundances.nn.bundle import ModelBundle
from desi_abundances.nn.calibrate import calibrate_bundle
from desi_abundances.nn.model import fit_label_model
from desi_abundances.spectra import Spectra

logger = logging.getLogger(__name__)


def train_label_model(
    training_spectra: Spectra, data_split: pd.DataFrame, pixel_standardisation: pd.DataFrame,
    labels: list[str], params: dict[str, Any],
) -> tuple[ModelBundle, list[float], list[float], dict[str, dict[str, float]]]:
    """Train the network; return the bundle, the per-epoch train and validation losses, and
    the validation metrics in MlflowMetricsHistoryDataset form, named by
    ``evaluation.mlflow_names`` (``network/validation/fe_h.residual_std``,
    ``network/training/best_epoch``, ...). The bundle's errors are calibrated on the
    validation split (``nn.calibrate``, ``params:training.error_calibration``).
    """
    params = dict(params)
    calibration = params.pop("error_calibration", None)
    bundle, result, metrics = fit_label_model(training_spectra, data_split,
                                              pixel_standardisation, labels, params)
    validation = split_spectra(training_spectra, data_split)[1]
    bundle = calibrate_bundle(bundle, validation, calibration)
    logger.info("trained %d epochs in %.1f s (best %d); validation scatter: %s",
                result.epochs_run, result.seconds, result.best_epoch,
                {k: round(v, 4) for k, v in metrics.items() if k.endswith("_residual_std")})
    named = mlflow_names.training_names(metrics, list(labels))
    metric_items = {name: {"value": value, "step": 0} for name, value in named.items()}
    return bundle, list(result.train_loss), list(result.validation_loss), metric_items
