"""The three methods on the same test stars: the network (``nn.predict``), the ridge peer
and The Cannon (``peers``), each taking the train / validation / test spectra of
``split.split_spectra`` and returning one predictions frame per method (TARGETID,
``<label>``, ``<label>_err``) and what it took (seconds, settings chosen).

Units: the labels' own (K for teff, dex otherwise); times in seconds.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.evaluation import peers
from desi_abundances.nn.predict import predict_labels
from desi_abundances.spectra import Spectra

logger = logging.getLogger(__name__)


def predictions_frame(target_ids: np.ndarray, labels: Sequence[str], values: np.ndarray,
                      errors: np.ndarray) -> pd.DataFrame:
    """TARGETID, ``<label>`` and ``<label>_err`` columns from (n_stars, n_labels) arrays."""
    columns: dict[str, Any] = {"TARGETID": target_ids}
    for k, label in enumerate(labels):
        columns[label] = values[:, k]
        columns[f"{label}_err"] = errors[:, k]
    return pd.DataFrame(columns)


def is_mock(spectra: Spectra, bundle: Any | None) -> bool:
    """True when the spectra (header MOCK) or the bundle (is_mock) come from the mock."""
    return bool(spectra.meta.attrs.get("is_mock", False)) or bool(
        getattr(bundle, "is_mock", False)
    )


def network_predictions(model_bundle: Any, test: Spectra, labels: Sequence[str],
                        batch_size: int = 1024) -> tuple[pd.DataFrame, float]:
    """``nn.predict.predict_labels`` of the test stars (TARGETID, ``<label>``,
    ``<label>_err``, input_distance) and the seconds it took.

    Raises:
        ValueError: when the bundle does not predict every label in ``labels``.
    """
    start = time.perf_counter()
    predictions = predict_labels(model_bundle, test, batch_size=int(batch_size),
                                 preprocessing=test.meta.attrs.get("preprocessing"))
    seconds = time.perf_counter() - start
    missing = [label for label in labels if label not in predictions.columns]
    if missing:
        raise ValueError(f"model_bundle predicts no {missing} (bundle labels: "
                         f"{list(model_bundle.label_names)}); retrain with params:labels")
    logger.info("network: %d test stars in %.1f s", len(predictions), seconds)
    return predictions, seconds


def ridge_predictions(train: Spectra, validation: Spectra, test: Spectra, labels: Sequence[str],
                      settings: Mapping[str, Any], model_bundle: Any | None = None
                      ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Ridge peer: fitted on ``train``, alpha per label on ``validation``, applied to
    ``test``; its inputs are the network's (pixels standardised by the bundle's median and
    IQR when a bundle is given). ``settings``: ``evaluation.ridge`` (enabled, alphas).

    Returns:
        predictions (NaN when disabled) and info (enabled, chosen alphas, validation robust
        std, n_train, seconds).
    """
    test_ids = test.meta["TARGETID"].to_numpy()
    if not settings.get("enabled", True):
        nan = np.full((test_ids.size, len(labels)), np.nan)
        return predictions_frame(test_ids, labels, nan, nan), {"enabled": False}
    if validation.n_spectra == 0:
        raise ValueError("ridge: data_split has no validation star to choose alpha")
    start = time.perf_counter()
    peer = peers.fit_ridge(
        train.flux, train.ivar, train.mask, peers.label_matrix(train.meta, labels),
        validation.flux, validation.ivar, validation.mask,
        peers.label_matrix(validation.meta, labels), list(labels),
        alphas=[float(a) for a in settings.get("alphas", [0.1, 1, 10, 100, 1000])],
        scaling=peers.PixelScaling(
            median=np.asarray(model_bundle.pixel_median, np.float64),
            iqr=np.asarray(model_bundle.pixel_iqr, np.float64),
        ) if model_bundle is not None else None,
    )
    values, errors = peer.predict(test.flux, test.ivar, test.mask)
    seconds = time.perf_counter() - start
    logger.info("ridge: fitted and applied in %.1f s", seconds)
    info = {
        "enabled": True,
        "alpha": peer.alphas,
        "validation_robust_std": peer.validation_scatter,
        "n_train": int(train.n_spectra),
        "seconds": seconds,
    }
    return predictions_frame(test_ids, labels, values, errors), info


def cannon_predictions(train: Spectra, test: Spectra, labels: Sequence[str],
                       settings: Mapping[str, Any], seed: int = 0
                       ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The Cannon peer: trained on the ``train`` stars with all modelled labels known (see
    ``peers.cannon_training_labels``), a seeded subsample of at most ``max_training_stars``;
    labels of the ``test`` stars by LM with inverse-Hessian errors. ``settings``:
    ``evaluation.cannon``.

    Returns:
        predictions (every label; NaN for labels the Cannon does not model, plus
        ``chi2_reduced`` and ``converged``) and info (labels, n_train, n_terms, seconds...).

    Raises:
        ValueError: when ``settings['labels']`` names a label not in ``labels``.
    """
    settings = dict(settings)
    labels = list(labels)
    test_ids = test.meta["TARGETID"].to_numpy()
    nan = np.full((test_ids.size, len(labels)), np.nan)
    if not settings.get("enabled", True):
        return predictions_frame(test_ids, labels, nan, nan), {"enabled": False}
    modelled = list(settings.get("labels") or labels)
    unknown = [label for label in modelled if label not in labels]
    if unknown:
        raise ValueError(f"evaluation.cannon.labels {unknown} are not in params:labels")
    train_labels = peers.label_matrix(train.meta, modelled)
    modelled, train_labels, dropped = peers.cannon_training_labels(train_labels, modelled,
                                                                    settings)
    complete = np.nonzero(peers.complete_label_rows(train_labels))[0]
    limit = settings.get("max_training_stars")
    if limit and complete.size > int(limit):
        rng = np.random.default_rng(int(seed))
        complete = np.sort(rng.choice(complete, size=int(limit), replace=False))
    start = time.perf_counter()
    model = peers.fit_cannon_peer(
        train.flux[complete], train.ivar[complete], train.mask[complete],
        train_labels[complete], modelled, settings,
    )
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fit = peers.predict_cannon_peer(model, test.flux, test.ivar, test.mask, settings,
                                    train_labels=train_labels[complete], seed=int(seed))
    test_seconds = time.perf_counter() - start
    logger.info(
        "The Cannon: %d labels, %d training stars, trained in %.1f s, %d test stars in %.1f s",
        len(modelled), complete.size, train_seconds, test_ids.size, test_seconds,
    )
    values, errors = nan.copy(), nan.copy()
    for k, label in enumerate(modelled):
        values[:, labels.index(label)] = fit.labels[:, k]
        errors[:, labels.index(label)] = fit.errors[:, k]
    frame = predictions_frame(test_ids, labels, values, errors)
    frame["chi2_reduced"] = fit.reduced_chi2
    frame["converged"] = fit.converged
    info = {
        "enabled": True,
        "labels": modelled,
        "labels_not_modelled": [label for label in labels if label not in modelled],
        "labels_dropped_for_missing_values": dropped,
        "n_train": int(complete.size),
        "n_terms": int(model.theta.shape[1]),
        "n_pixels_modelled": int(model.pixel_used.sum()),
        "median_scatter": float(np.median(model.scatter[model.pixel_used])),
        "converged_fraction": float(np.mean(fit.converged)),
        "train_seconds": train_seconds,
        "test_seconds": test_seconds,
    }
    return frame, info
