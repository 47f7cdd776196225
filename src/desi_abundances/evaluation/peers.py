"""Peer methods the network is compared with, on the same split, inputs and masks.

* Ridge regression from standardised pixels to each label, alpha chosen per label on the
  validation split. It is solved exactly in the dual (one eigendecomposition for every label
  and alpha; each label on its own known stars); ``tests/evaluation`` checks it against
  ``sklearn.linear_model.Ridge``, which would need one fit per label and alpha (too slow for
  24 labels x 7 alphas x 5000 stars x 7781 pixels on two cores).
* The Cannon (:mod:`desi_abundances.evaluation.cannon`), trained on the training stars whose modelled
  labels are all known.

Inputs are the continuum-normalised rest-frame spectra the network sees (``Spectra``); a
masked pixel (mask True / ivar 0) carries no information for either peer. numpy only,
no Kedro.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.evaluation import cannon, cannon_fit
from desi_abundances.maths.robust import robust_std


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
    def fit(cls, flux: np.ndarray, good: np.ndarray, min_iqr: float = 1e-3) -> PixelScaling:
        values = np.where(good, flux, np.nan)
        with np.errstate(all="ignore"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                q25, median, q75 = np.nanpercentile(values, [25, 50, 75], axis=0)
        median = np.nan_to_num(median, nan=1.0)
        iqr = np.nan_to_num(q75 - q25, nan=1.0)
        iqr = np.maximum(iqr, min_iqr)
        return cls(median=median, iqr=iqr)

    def transform(self, flux: np.ndarray, good: np.ndarray) -> np.ndarray:
        """Standardised features; a bad pixel becomes 0 (the training median)."""
        scaled = (np.asarray(flux, np.float64) - self.median) / self.iqr
        return np.where(good, scaled, 0.0)


class DualRidge:
    """Exact ridge regressions of many labels, each on its own set of training stars.

    Solves, per label and alpha, ``min_w,b sum_{n in S} (y_n - b - x_n.w)^2 + alpha |w|^2``
    (``sklearn.linear_model.Ridge`` with ``fit_intercept=True``; S: stars whose label is
    known) in the dual: one eigendecomposition of the training kernel ``K = X X^T`` serves
    every alpha and every label. A label's missing stars M enter as a constraint (their dual
    weights are 0), costing an ``|M| x |M|`` solve; the intercept is an extra constant
    feature so large that its penalty is negligible (see ``INTERCEPT_WEIGHT``).

    Costs: ``N^2 P`` for the kernel and ``N^3`` for the eigendecomposition (N training stars,
    P pixels), then ``N^2`` per label and alpha plus ``|M|^2 N`` for missing labels.
    """

    INTERCEPT_WEIGHT = 1e3
    """Kernel constant of the intercept feature, in units of the mean kernel diagonal: the
    intercept's penalty is alpha / (1e3 x mean diagonal), negligible, while the kernel stays
    well conditioned in float64."""

    def __init__(self, x_train: np.ndarray) -> None:
        x_train = np.asarray(x_train, np.float64)
        self.centre = x_train.mean(axis=0)
        self.x_train = x_train - self.centre
        kernel = self.x_train @ self.x_train.T
        self.intercept_term = self.INTERCEPT_WEIGHT * max(float(np.mean(np.diag(kernel))), 1.0)
        kernel += self.intercept_term
        self.eigenvalues, self.eigenvectors = np.linalg.eigh(kernel)
        self.eigenvalues = np.clip(self.eigenvalues, 0.0, None)

    def cross_kernel(self, x: np.ndarray) -> np.ndarray:
        """``K(x, train)`` for new rows x (n, P) -> (n, N)."""
        return (np.asarray(x, np.float64) - self.centre) @ self.x_train.T + self.intercept_term

    def dual_weights(self, y: np.ndarray, known: np.ndarray, alpha: float) -> np.ndarray:
        """Dual weights (N,) of one label; ``known`` marks the training stars used.

        ``y`` should be centred (mean 0 over the known stars) so that the tiny penalty on
        the intercept cannot shrink the label's mean.
        """
        vectors, inverse = self.eigenvectors, 1.0 / (self.eigenvalues + alpha)

        def apply(v: np.ndarray) -> np.ndarray:  # (K + alpha I)^-1 v
            return vectors @ (inverse[:, None] * (vectors.T @ v)) if v.ndim == 2 else (
                vectors @ (inverse * (vectors.T @ v)))

        filled = np.where(known, y, 0.0)
        weights = apply(filled)
        missing = np.nonzero(~known)[0]
        if missing.size:
            # choose y at the missing stars so that their dual weights vanish
            rows = vectors[missing]
            block = (rows * inverse) @ rows.T  # (K + alpha I)^-1 restricted to M x M
            y_missing = -np.linalg.solve(block, weights[missing])
            correction = np.zeros_like(filled)
            correction[missing] = y_missing
            weights = weights + apply(correction)
            weights[missing] = 0.0
        return weights


@dataclass
class RidgePeer:
    """Ridge regressions from standardised pixels to labels.

    Attributes:
        label_names: labels predicted.
        scaling: the pixel standardisation (the network's, from the model bundle, or fitted
            on the training split).
        solver: the :class:`DualRidge` of the training split.
        dual_weights: (N_train, K) dual weights at each label's chosen alpha.
        label_mean: (K,) mean of each label over its training stars (added back).
        alphas: chosen regularisation per label.
        validation_scatter: robust std of the validation residuals per label at the chosen
            alpha (K or dex); it is the ridge's (constant) per-star uncertainty, and it
            includes APOGEE's own noise.
        validation_scores: ``{label: {alpha: validation RMS}}``.
    """

    label_names: list[str]
    scaling: PixelScaling
    solver: DualRidge
    dual_weights: np.ndarray
    label_mean: np.ndarray
    alphas: dict[str, float]
    validation_scatter: dict[str, float]
    validation_scores: dict[str, dict[float, float]]

    def predict(
        self, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, chunk: int = 2048
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted labels and their (constant) uncertainties, both (n_stars, K)."""
        good = usable_ivar(flux, ivar, mask) > 0
        prediction = np.empty((len(flux), len(self.label_names)))
        for start in range(0, len(flux), chunk):
            rows = slice(start, start + chunk)
            features = self.scaling.transform(flux[rows], good[rows])
            prediction[rows] = (self.solver.cross_kernel(features) @ self.dual_weights
                                + self.label_mean)
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
    scaling: PixelScaling | None = None,
) -> RidgePeer:
    """Fit one ridge per label on its known training stars; alpha by validation RMS.

    Args:
        train_*, validation_*: spectra (n, P) and labels (n, K) of the two splits; NaN label =
            missing (excluded for that label only).
        alphas: candidate regularisations (penalty on the squared weights of standardised
            pixels, as in ``sklearn.linear_model.Ridge``).
        scaling: pixel standardisation; default: median/IQR of the training split.

    Raises:
        ValueError: when a label has fewer than 2 training stars or no validation star.
    """
    label_names = list(label_names)
    train_labels = np.asarray(train_labels, np.float64)
    validation_labels = np.asarray(validation_labels, np.float64)
    train_good = usable_ivar(train_flux, train_ivar, train_mask) > 0
    if scaling is None:
        scaling = PixelScaling.fit(np.asarray(train_flux, np.float64), train_good)
    solver = DualRidge(scaling.transform(train_flux, train_good))
    val_good = usable_ivar(validation_flux, validation_ivar, validation_mask) > 0
    val_kernel = solver.cross_kernel(scaling.transform(validation_flux, val_good))
    known_train = np.isfinite(train_labels)
    known_val = np.isfinite(validation_labels)
    for k, label in enumerate(label_names):
        if known_train[:, k].sum() < 2:
            raise ValueError(f"ridge: label '{label}' has fewer than 2 training stars")
        if not known_val[:, k].any():
            raise ValueError(f"ridge: label '{label}' has no validation star")

    chosen: dict[str, float] = {}
    scatter: dict[str, float] = {}
    scores: dict[str, dict[float, float]] = {label: {} for label in label_names}
    weights = np.zeros((len(train_labels), len(label_names)))
    label_mean = np.array([train_labels[known_train[:, k], k].mean()
                           for k in range(len(label_names))])
    for k, label in enumerate(label_names):
        best_rms = math.inf
        centred = train_labels[:, k] - label_mean[k]
        for alpha in alphas:
            dual = solver.dual_weights(centred, known_train[:, k], float(alpha))
            residual = (val_kernel[known_val[:, k]] @ dual + label_mean[k]
                        - validation_labels[known_val[:, k], k])
            rms = _rms(residual)
            scores[label][float(alpha)] = rms
            if rms < best_rms:
                best_rms, chosen[label] = rms, float(alpha)
                weights[:, k] = dual
                scatter[label] = robust_std(residual)
    return RidgePeer(
        label_names=label_names,
        scaling=scaling,
        solver=solver,
        dual_weights=weights,
        label_mean=label_mean,
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
) -> cannon_fit.CannonFit:
    """Cannon labels of test spectra. Candidate starts: the pivots, then ``n_extra_starts``
    training stars' labels drawn with ``seed``. LM runs from the first ``lm_starts``
    candidates (by chi^2 if ``screen_starts``); stars whose reduced chi^2 stays above
    ``retry_reduced_chi2`` are refitted from the others (see ``cannon_fit.fit_labels``).
    """
    starts = [model.pivots]
    n_extra = int(settings.get("n_extra_starts", 0) or 0)
    if n_extra and train_labels is not None:
        complete = train_labels[complete_label_rows(train_labels)]
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(complete), size=min(n_extra, len(complete)), replace=False)
        starts.extend(complete[picks])
    return cannon_fit.fit_labels(
        model,
        np.asarray(flux, np.float64),
        usable_ivar(flux, ivar, mask),
        initial_labels=np.array(starts),
        max_iterations=int(settings.get("max_iterations", 50)),
        tolerance=float(settings.get("chi2_tolerance", 1e-3)),
        star_chunk=int(settings.get("test_star_chunk", 64)),
        lm_starts=int(settings.get("lm_starts", 1) or 0),
        screen_starts=bool(settings.get("screen_starts", False)),
        retry_reduced_chi2=float(settings.get("retry_reduced_chi2", 2.0)),
    )
