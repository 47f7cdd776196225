"""Closed-form ridge regression from standardised pixels to standardised labels, used to
initialise the network's linear skip path (the MLP then learns only what is non-linear)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RIDGE_ALPHAS = (1e1, 1e2, 1e3, 1e4, 1e5)


@dataclass(frozen=True)
class CentredSVD:
    """Thin SVD of the centred training inputs: inputs - mean = u diag(s) vt."""

    mean: np.ndarray  # (n_pixels,)
    u: np.ndarray  # (n, r)
    s: np.ndarray  # (r,)
    vt: np.ndarray  # (r, n_pixels)

    @staticmethod
    def of(inputs: np.ndarray) -> CentredSVD:
        inputs = np.asarray(inputs, np.float32)
        mean = inputs.mean(axis=0)
        u, s, vt = _thin_svd(inputs - mean)
        return CentredSVD(mean=mean, u=u, s=s, vt=vt)

    def whitening(self, n_components: int) -> tuple[np.ndarray, np.ndarray]:
        """Weight (k, n_pixels) and bias (k,) mapping inputs to their first k principal
        component scores scaled to unit variance over the training set."""
        k = min(int(n_components), self.s.size)
        scale = np.sqrt(max(self.u.shape[0] - 1, 1)) / self.s[:k]
        weight = (self.vt[:k] * scale[:, None].astype(np.float32)).astype(np.float32)
        return weight, (-(weight @ self.mean)).astype(np.float32)


def fit_ridge(inputs: np.ndarray, labels: np.ndarray, validation_inputs: np.ndarray,
              validation_labels: np.ndarray, alphas: Sequence[float] = DEFAULT_RIDGE_ALPHAS,
              n_imputation_rounds: int = 10, svd: CentredSVD | None = None,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ridge weights per label, the penalty of each chosen on the validation split.

    One thin SVD of the centred training inputs (from the eigen-decomposition of the
    n x n Gram matrix: n spectra << n pixels) serves every label and penalty:
    w(alpha) = V diag(s / (s^2 + alpha)) U^T (y - mean y). Missing labels (NaN) are imputed
    with the current prediction and the fit repeated (``n_imputation_rounds``, an EM-style
    fill-in, so a label missing for some stars still uses all spectra).

    Args:
        inputs: (n, n_pixels) standardised training inputs.
        labels: (n, n_labels) standardised labels, NaN where missing.
        validation_inputs, validation_labels: the same for the validation split.
        alphas: penalties tried per label (input units: standardised pixels).
        svd: a precomputed :class:`CentredSVD` of ``inputs`` (computed when None).

    Returns:
        weight (n_labels, n_pixels), bias (n_labels,), chosen alpha (n_labels,), and the
        leave-one-out predictions for the training rows (n, n_labels) from the closed form
        y - (y - y_fit) / (1 - h_ii): what the ridge would predict for a star it had not
        seen, so a model stacked on it learns from honest, out-of-sample residuals.
        float32. Labels without any valid value get zero weights (and predictions).
    """
    svd = CentredSVD.of(inputs) if svd is None else svd
    x_mean, u, s, vt = svd.mean, svd.u, svd.s, svd.vt
    n_labels = labels.shape[1]
    valid = np.isfinite(labels)
    y_mean = np.array([labels[valid[:, j], j].mean() if valid[:, j].any() else 0.0
                       for j in range(n_labels)])
    filled = np.where(valid, labels, y_mean)
    val_projected = (np.asarray(validation_inputs, np.float32) - x_mean) @ vt.T  # (n_val, r)
    val_valid = np.isfinite(validation_labels)
    alphas = np.asarray(alphas, np.float64)
    chosen = np.full(n_labels, alphas[len(alphas) // 2])
    for _ in range(max(n_imputation_rounds, 1)):
        y_mean = filled.mean(axis=0)  # intercept over all rows (inputs are centred on all)
        projected_y = u.T @ (filled - y_mean)  # (r, n_labels)
        # validation error for every (alpha, label)
        errors = np.empty((alphas.size, n_labels))
        for a, alpha in enumerate(alphas):
            coefficients = (s / (s**2 + alpha))[:, None] * projected_y
            prediction = val_projected @ coefficients + y_mean
            residual = np.where(val_valid, validation_labels - prediction, 0.0)
            errors[a] = (residual**2).sum(axis=0) / np.maximum(val_valid.sum(axis=0), 1)
        chosen = alphas[np.argmin(errors, axis=0)]
        coefficients = (s[:, None] / (s[:, None] ** 2 + chosen[None, :])) * projected_y
        fitted = u @ (s[:, None] * coefficients) + y_mean
        filled = np.where(valid, labels, fitted)
    weight = (vt.T @ coefficients).T  # (n_labels, n_pixels)
    bias = y_mean - weight @ x_mean
    shrink = s[:, None] ** 2 / (s[:, None] ** 2 + chosen[None, :])  # (r, n_labels)
    leverage = (u**2) @ shrink + 1.0 / u.shape[0]  # (n, n_labels), incl. the intercept
    leave_one_out = filled - (filled - fitted) / np.maximum(1.0 - leverage, 1e-3)
    empty = ~valid.any(axis=0)
    weight[empty], bias[empty], leave_one_out[:, empty] = 0.0, 0.0, 0.0
    return (weight.astype(np.float32), bias.astype(np.float32), chosen.astype(np.float32),
            leave_one_out.astype(np.float32))


def _thin_svd(matrix: np.ndarray, rcond: float = 1e-6) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Thin SVD of a wide (n <= p) matrix via eigh of its Gram matrix, float64 Gram.

    Several times faster than ``np.linalg.svd`` for n = 4,000 spectra x 7,781 pixels;
    singular values below ``rcond`` x the largest are dropped.
    """
    gram = (matrix @ matrix.T).astype(np.float64)
    eigenvalues, u = np.linalg.eigh(gram)
    keep = eigenvalues > rcond * eigenvalues.max()
    eigenvalues, u = eigenvalues[keep][::-1], u[:, keep][:, ::-1]
    s = np.sqrt(eigenvalues)
    vt = ((u / s).T.astype(np.float32) @ matrix)  # (r, p)
    return u, s, vt
