"""A data-driven quadratic model of the training spectra, and simulated spectra from it.

The model is The Cannon's form (Ness et al. 2015): the standardised flux at every pixel is
quadratic in the labels, with an intrinsic scatter per pixel; it is fitted to the training
split only. Two uses:

1. the label network's refinement step (``nn.refinement``): one Gauss-Newton step on this
   model with each star's own noise (the default network uses it);
2. optionally (``n_spectra`` > 0), simulated training spectra: labels drawn around the
   training stars' labels, spectra decoded, each given the noise pattern and mask of a random
   real training spectrum. (Tried on the mock: no gain over the real spectra alone for the
   MLP on principal components, so off by default.)

Everything works in standardised units (``nn.model.training_arrays``): inputs
``(flux - median) / iqr``, labels ``(label - offset) / scale``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from desi_abundances.defaults import with_defaults
from desi_abundances.maths.polynomial import design_matrix
from desi_abundances.nn.training import TrainingArrays

DEFAULT_SPECTRUM_MODEL: dict[str, Any] = {
    "min_label_coverage": 0.9,
    "ridge": 1.0e-3,
    "imputation_rounds": 4,
    "n_spectra": 0,
    "seed": 7,
    "jitter": 0.3,
    "block_rows": 2048,
}
"""Defaults of ``params:training.spectrum_model``.

min_label_coverage: labels known for at least this fraction of training stars are modelled
    (the quadratic model needs every modelled label; it is fitted on the stars that have all).
imputation_rounds: refits with masked pixels filled by the model (see fit_quadratic_model).
n_spectra: simulated spectra added to the training split (0: none).
jitter: labels are drawn as a training star's labels plus jitter x (the training labels'
    covariance)^(1/2) x N(0, 1): a kernel density estimate of the training label
    distribution, bandwidth ``jitter`` (standardised units).
ridge: L2 penalty of the quadratic fit on the non-constant terms, fraction of the mean
    diagonal of the normal matrix.
block_rows: simulated spectra generated per block (bounds memory).
"""


@dataclass
class QuadraticSpectrumModel:
    """Standardised flux = coefficients^T a(labels) per pixel, with intrinsic scatter.

    Attributes:
        label_index: (K,) columns of the network's labels that the model uses.
        coefficients: (n_terms, n_pixels) float64; ``maths.polynomial.design_matrix`` order.
        intrinsic_variance: (n_pixels,) model scatter per pixel beyond the noise (input units^2).
        label_root_covariance: (K, K) a matrix square root of the training labels' covariance
            (standardised units), the shape of the jitter when drawing labels.
        label_min, label_max: (K,) the training range; drawn labels are clipped to it.
    """

    label_index: np.ndarray
    coefficients: np.ndarray
    intrinsic_variance: np.ndarray
    label_root_covariance: np.ndarray
    label_min: np.ndarray
    label_max: np.ndarray

    def predict(self, labels: np.ndarray) -> np.ndarray:
        """(n, K) standardised labels -> (n, n_pixels) standardised flux (float32)."""
        return (design_matrix(labels, order=2) @ self.coefficients).astype(np.float32)


def spectrum_model_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by ``settings``; unknown keys raise ValueError."""
    return with_defaults(DEFAULT_SPECTRUM_MODEL, settings, "spectrum_model")


def modelled_labels(labels: np.ndarray, min_coverage: float,
                    min_stars_per_term: float = 2.0) -> np.ndarray:
    """Indices (ascending) of the label columns the quadratic model takes: those known
    (finite) for at least ``min_coverage`` of the rows, best covered first, as many as keep at
    least ``min_stars_per_term`` stars with all of them per model term (1 + K + K(K+1)/2).
    Empty when not even one label qualifies (a small training set)."""
    finite = np.isfinite(labels)
    coverage = finite.mean(axis=0)
    candidates = [int(j) for j in np.argsort(-coverage, kind="stable") if coverage[j] >= min_coverage]
    chosen: list[int] = []
    for j in candidates:
        trial = chosen + [j]
        k = len(trial)
        n_complete = int(np.all(finite[:, trial], axis=1).sum())
        if n_complete < min_stars_per_term * (1 + k + k * (k + 1) // 2):
            break
        chosen = trial
    return np.array(sorted(chosen), dtype=np.int64)


def fit_quadratic_model(train: TrainingArrays, label_index: np.ndarray,
                        ridge: float = 1.0e-3, rounds: int = 4) -> QuadraticSpectrumModel:
    """Fit the quadratic model to the training stars with every modelled label known.

    Weighted least squares with one weight per star, 1 / median(noise^2 + scatter^2) over its
    good pixels (one weight per star keeps the fit one matrix solve for all pixels; per-pixel
    weights would need one solve per pixel). Masked pixels (input 0, the median) are not
    data: they are filled with the model's own prediction and the fit repeated (EM-style,
    ``rounds`` times). The intrinsic scatter per pixel is the median over stars of
    residual^2 - noise^2 at good pixels, floored at 0.

    Raises:
        ValueError: when fewer stars than model terms have every modelled label.
    """
    labels = train.labels[:, label_index].astype(np.float64)
    complete = np.all(np.isfinite(labels), axis=1)
    design = design_matrix(labels[complete], order=2)
    n_terms = design.shape[1]
    if complete.sum() < n_terms:
        raise ValueError(f"only {int(complete.sum())} training stars have all {label_index.size} "
                         f"modelled labels; the quadratic model has {n_terms} terms")
    inputs = train.inputs[complete].astype(np.float64)
    noise = train.input_noise[complete].astype(np.float64)
    good = noise > 0
    noise_variance = np.where(good, noise**2, np.nan)

    def solve(star_weight: np.ndarray, data: np.ndarray) -> np.ndarray:
        weighted = design * star_weight[:, None]
        normal = design.T @ weighted
        penalty = ridge * np.trace(normal) / n_terms
        normal[np.arange(1, n_terms), np.arange(1, n_terms)] += penalty
        return np.linalg.solve(normal, weighted.T @ data)

    intrinsic = np.zeros(inputs.shape[1])
    filled = inputs
    for _ in range(rounds + 1):
        with np.errstate(all="ignore"):
            weight = np.nan_to_num(1.0 / np.nanmedian(noise_variance + intrinsic, axis=1))
        coefficients = solve(weight, filled)
        model = design @ coefficients
        with np.errstate(all="ignore"):
            scatter = np.nanmedian(np.where(good, (inputs - model) ** 2, np.nan)
                                   - noise_variance, axis=0)
        intrinsic = np.maximum(np.nan_to_num(scatter), 0.0)
        filled = np.where(good, inputs, model)
    covariance = np.atleast_2d(np.cov(labels[complete].T))
    values, vectors = np.linalg.eigh(covariance)
    root = vectors @ np.diag(np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    return QuadraticSpectrumModel(
        label_index=np.asarray(label_index),
        coefficients=coefficients,
        intrinsic_variance=intrinsic,
        label_root_covariance=root,
        label_min=labels[complete].min(axis=0),
        label_max=labels[complete].max(axis=0),
    )


def draw_labels(model: QuadraticSpectrumModel, anchors: np.ndarray, n: int, jitter: float,
                rng: np.random.Generator) -> np.ndarray:
    """(n, K) labels: random ``anchors`` rows (complete training labels) plus Gaussian jitter
    shaped by the training covariance, clipped to the training range."""
    picked = anchors[rng.integers(0, anchors.shape[0], n)]
    noise = rng.standard_normal((n, anchors.shape[1])) @ model.label_root_covariance.T
    return np.clip(picked + jitter * noise, model.label_min, model.label_max)


def simulate_training_arrays(model: QuadraticSpectrumModel, train: TrainingArrays, n: int,
                             jitter: float, seed: int, block_rows: int = 2048
                             ) -> TrainingArrays:
    """``n`` simulated, standardised training spectra (same layout as ``train``).

    Each borrows the noise and mask of a random real training spectrum: flux = model(labels)
    + N(0, noise^2 + intrinsic scatter^2) at its good pixels, 0 (the median) at its masked ones.
    Label columns the model does not use are NaN; label errors are 0 (the labels are exact).
    The draws depend on ``seed`` and ``block_rows``.
    """
    rng = np.random.default_rng(seed)
    labels_all = train.labels[:, model.label_index]
    anchors = labels_all[np.all(np.isfinite(labels_all), axis=1)].astype(np.float64)
    n_pixels = train.inputs.shape[1]
    inputs = np.empty((n, n_pixels), np.float32)
    input_noise = np.empty((n, n_pixels), np.float32)
    labels = np.full((n, train.labels.shape[1]), np.nan, np.float32)
    errors = np.full((n, train.labels.shape[1]), np.nan, np.float32)
    intrinsic = model.intrinsic_variance.astype(np.float32)
    for start in range(0, n, block_rows):
        rows = slice(start, min(start + block_rows, n))
        count = rows.stop - rows.start
        drawn = draw_labels(model, anchors, count, jitter, rng)
        donors = rng.integers(0, len(train), count)
        sigma = train.input_noise[donors]
        good = sigma > 0
        total_sigma = np.sqrt(sigma**2 + intrinsic).astype(np.float32)
        flux = model.predict(drawn)
        flux += total_sigma * rng.standard_normal((count, n_pixels), dtype=np.float32)
        inputs[rows] = np.where(good, flux, 0.0)
        input_noise[rows] = np.where(good, total_sigma, 0.0)
        block_labels = labels[rows]
        block_labels[:, model.label_index] = drawn
        labels[rows] = block_labels
        block_errors = errors[rows]
        block_errors[:, model.label_index] = 0.0
        errors[rows] = block_errors
    return TrainingArrays(inputs=inputs, input_noise=input_noise, labels=labels,
                          label_errors=errors)
