"""Peer methods the network is compared with, on the same split, inputs and masks.

* Ridge regression (scikit-learn) from standardised pixels to each label, alpha chosen per
  label on the validation split.
* The Cannon (:mod:`desi_abundances.cannon`), trained on the training stars whose modelled
  labels are all known.

Inputs are the continuum-normalised rest-frame spectra the network sees (``Spectra``); a
masked pixel (mask True / ivar 0) carries no information for either peer. numpy and
scikit-learn only, no Kedro.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from desi_abundances import cannon
from desi_abundances.metrics import robust_std


# --- shared helpers ------------------------------------------------------------------------
def label_matrix(meta: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """(n_stars, K) float64 reference labels from a meta table; NaN = missing.

    Raises:
        KeyError: naming the label columns the table lacks.
    """
    missing = [label for label in labels if label not in meta.columns]
    if missing:
        raise KeyError(f"meta table has no column(s) {missing}")
    return meta[list(labels)].to_numpy(dtype=np.float64)


def usable_ivar(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """ivar with masked, non-finite or negative pixels set to 0 (float64)."""
    ivar = np.asarray(ivar, dtype=np.float64)
    good = ~np.asarray(mask, bool) & np.isfinite(ivar) & (ivar > 0) & np.isfinite(flux)
    return np.where(good, ivar, 0.0)


# --- ridge ---------------------------------------------------------------------------------
@dataclass
class PixelScaling:
    """Per-pixel median and inter-quartile range of the training flux (good pixels only)."""

    median: np.ndarray
    iqr: np.ndarray

    @classmethod
    def fit(cls, flux: np.ndarray, good: np.ndarray) -> PixelScaling:
        values = np.where(good, flux, np.nan)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                q25, median, q75 = np.nanpercentile(values, [25, 50, 75], axis=0)
        median = np.nan_to_num(median, nan=1.0)
        iqr = np.nan_to_num(q75 - q25, nan=0.0)
        iqr = np.where(iqr > 0, iqr, 1.0)
        return cls(median=median, iqr=iqr)

    def transform(self, flux: np.ndarray, good: np.ndarray) -> np.ndarray:
        """Standardised features; a bad pixel becomes 0 (the training median)."""
        scaled = (np.asarray(flux, np.float64) - self.median) / self.iqr
        return np.where(good, scaled, 0.0)


@dataclass
class RidgePeer:
    """Ridge regressions from standardised pixels to labels.

    Attributes:
        label_names: labels predicted.
        scaling: the pixel standardisation fitted on the training split.
        models: fitted ``sklearn.linear_model.Ridge`` objects and the label indices each
            predicts (labels sharing a training-star set share one multi-output model).
        alphas: chosen regularisation per label.
        validation_scatter: robust std of the validation residuals per label at the chosen
            alpha (K or dex); it is the ridge's (constant) per-star uncertainty, and it
            includes APOGEE's own noise.
        validation_scores: ``{label: {alpha: validation RMS}}``.
    """

    label_names: list[str]
    scaling: PixelScaling
    models: list[tuple[Any, list[int]]]
    alphas: dict[str, float]
    validation_scatter: dict[str, float]
    validation_scores: dict[str, dict[float, float]]

    def predict(
        self, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted labels and their (constant) uncertainties, both (n_stars, K)."""
        features = self.scaling.transform(flux, usable_ivar(flux, ivar, mask) > 0)
        prediction = np.full((features.shape[0], len(self.label_names)), np.nan)
        for model, columns in self.models:
            prediction[:, columns] = np.asarray(model.predict(features)).reshape(
                features.shape[0], len(columns)
            )
        errors = np.broadcast_to(
            np.array([self.validation_scatter[label] for label in self.label_names]),
            prediction.shape,
        ).copy()
        return prediction, errors


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values**2))) if values.size else math.nan


def fit_ridge(
    train_flux: np.ndarray,
    train_ivar: np.ndarray,
    train_mask: np.ndarray,
    train_labels: np.ndarray,
    validation_flux: np.ndarray,
    validation_ivar: np.ndarray,
    validation_mask: np.ndarray,
    validation_labels: np.ndarray,
    label_names: Sequence[str],
    alphas: Sequence[float] = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0),
) -> RidgePeer:
    """Fit one ridge per label (alpha chosen by validation RMS), missing labels excluded.

    Labels whose training stars (finite reference) coincide are fitted together as one
    multi-output ridge, so a complete label set costs one fit per alpha.

    Raises:
        ValueError: when a label has no training or no validation star.
    """
    from sklearn.linear_model import Ridge

    label_names = list(label_names)
    train_good = usable_ivar(train_flux, train_ivar, train_mask) > 0
    scaling = PixelScaling.fit(np.asarray(train_flux, np.float64), train_good)
    x_train = scaling.transform(train_flux, train_good)
    x_val = scaling.transform(
        validation_flux, usable_ivar(validation_flux, validation_ivar, validation_mask) > 0
    )
    known_train = np.isfinite(train_labels)
    known_val = np.isfinite(validation_labels)
    for k, label in enumerate(label_names):
        if known_train[:, k].sum() < 2:
            raise ValueError(f"ridge: label '{label}' has fewer than 2 training stars")
        if not known_val[:, k].any():
            raise ValueError(f"ridge: label '{label}' has no validation star")

    groups: dict[bytes, list[int]] = {}
    for k in range(len(label_names)):
        groups.setdefault(np.packbits(known_train[:, k]).tobytes(), []).append(k)

    models: list[tuple[Any, list[int]]] = []
    chosen: dict[str, float] = {}
    scatter: dict[str, float] = {}
    scores: dict[str, dict[float, float]] = {label: {} for label in label_names}
    for columns in groups.values():
        rows = known_train[:, columns[0]]
        best = {k: (math.inf, None, None) for k in columns}
        for alpha in alphas:
            model = Ridge(alpha=float(alpha)).fit(x_train[rows], train_labels[rows][:, columns])
            predicted = np.asarray(model.predict(x_val)).reshape(len(x_val), len(columns))
            for i, k in enumerate(columns):
                residual = predicted[known_val[:, k], i] - validation_labels[known_val[:, k], k]
                rms = _rms(residual)
                scores[label_names[k]][float(alpha)] = rms
                if rms < best[k][0]:
                    best[k] = (rms, float(alpha), residual)
        for k in columns:
            chosen[label_names[k]] = best[k][1]
            scatter[label_names[k]] = robust_std(best[k][2])
        final = Ridge(alpha=np.array([chosen[label_names[k]] for k in columns])).fit(
            x_train[rows], train_labels[rows][:, columns]
        )
        models.append((final, list(columns)))
    return RidgePeer(
        label_names=label_names,
        scaling=scaling,
        models=models,
        alphas=chosen,
        validation_scatter=scatter,
        validation_scores=scores,
    )


# --- The Cannon ----------------------------------------------------------------------------
def complete_label_rows(labels: np.ndarray) -> np.ndarray:
    """Boolean (n_stars,): stars whose labels are all finite."""
    return np.all(np.isfinite(labels), axis=1)


def cannon_training_labels(
    train_labels: np.ndarray, label_names: Sequence[str], settings: Mapping[str, Any]
) -> tuple[list[str], np.ndarray, list[str]]:
    """Labels The Cannon will model, given the missing values among the training stars.

    The Cannon needs every modelled label of a training star. With ``missing_labels:
    drop_sparse`` (default) the label with the most missing values is dropped, one at a time,
    until ``min_training_stars`` stars have all the remaining ones; with ``complete`` nothing
    is dropped (and :func:`fit_cannon_peer` fails if too few stars remain).

    Returns:
        (kept label names, their (n_stars, K_kept) columns, dropped label names).
    """
    policy = settings.get("missing_labels", "drop_sparse")
    if policy not in ("drop_sparse", "complete"):
        raise ValueError(
            f"evaluation.cannon.missing_labels must be drop_sparse or complete, got {policy!r}"
        )
    kept = list(label_names)
    values = np.asarray(train_labels, np.float64)
    dropped: list[str] = []
    minimum = int(settings.get("min_training_stars", 0) or 0)
    while (
        policy == "drop_sparse"
        and len(kept) > 1
        and complete_label_rows(values).sum() < minimum
    ):
        worst = int(np.argmax((~np.isfinite(values)).sum(axis=0)))
        dropped.append(kept.pop(worst))
        values = np.delete(values, worst, axis=1)
    return kept, values, dropped


def fit_cannon_peer(
    train_flux: np.ndarray,
    train_ivar: np.ndarray,
    train_mask: np.ndarray,
    train_labels: np.ndarray,
    label_names: Sequence[str],
    settings: Mapping[str, Any],
) -> cannon.CannonModel:
    """Train The Cannon on the training stars with every modelled label known.

    Args:
        settings: ``order``, ``regularization``, ``n_scatter_iterations``, ``pixel_chunk``,
            ``star_chunk``, ``cache_mb`` (see :func:`cannon.train_cannon`);
            ``min_training_stars`` (error when fewer complete stars remain).

    Raises:
        ValueError: when too few training stars have complete labels.
    """
    complete = complete_label_rows(train_labels)
    n_terms = cannon.term_exponents(len(label_names), int(settings.get("order", 2))).shape[0]
    minimum = int(settings.get("min_training_stars", 0) or 0)
    if complete.sum() < max(minimum, 2):
        raise ValueError(
            f"The Cannon: only {int(complete.sum())} training stars have all of "
            f"{list(label_names)} (need {max(minimum, 2)}; {n_terms} terms); model fewer "
            f"labels (evaluation.cannon.labels)"
        )
    return cannon.train_cannon(
        labels=train_labels[complete],
        flux=np.asarray(train_flux)[complete],
        ivar=usable_ivar(train_flux, train_ivar, train_mask)[complete],
        label_names=label_names,
        order=int(settings.get("order", 2)),
        regularization=float(settings.get("regularization", 1e-6)),
        n_scatter_iterations=int(settings.get("n_scatter_iterations", 2)),
        pixel_chunk=int(settings.get("pixel_chunk", 256)),
        star_chunk=int(settings.get("star_chunk", 2048)),
        cache_mb=float(settings.get("cache_mb", 1024)),
    )


def predict_cannon_peer(
    model: cannon.CannonModel,
    flux: np.ndarray,
    ivar: np.ndarray,
    mask: np.ndarray,
    settings: Mapping[str, Any],
    train_labels: np.ndarray | None = None,
    seed: int = 0,
) -> cannon.CannonFit:
    """Cannon labels of test spectra, starting from the pivots plus ``n_extra_starts``
    training stars' labels drawn with ``seed`` (the lowest chi^2 wins)."""
    starts = [model.pivots]
    n_extra = int(settings.get("n_extra_starts", 0) or 0)
    if n_extra and train_labels is not None:
        complete = train_labels[complete_label_rows(train_labels)]
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(complete), size=min(n_extra, len(complete)), replace=False)
        starts.extend(complete[picks])
    return cannon.fit_labels(
        model,
        np.asarray(flux, np.float64),
        usable_ivar(flux, ivar, mask),
        initial_labels=np.array(starts),
        max_iterations=int(settings.get("max_iterations", 50)),
        tolerance=float(settings.get("tolerance", 1e-8)),
        star_chunk=int(settings.get("test_star_chunk", 64)),
    )
