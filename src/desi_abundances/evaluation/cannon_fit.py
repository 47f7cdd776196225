"""The Cannon's test step: labels of each star by Levenberg-Marquardt on the chi^2 of a
trained :class:`~desi_abundances.evaluation.cannon.CannonModel`, vectorised over stars, with
the inverse Gauss-Newton Hessian as the (formal) label covariance. See ``cannon``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from desi_abundances.evaluation.cannon import CannonModel, chunks


@dataclass
class CannonFit:
    """Labels fitted by :func:`fit_labels` (physical units).

    Attributes:
        labels: (n_stars, K) best-fit labels.
        errors: (n_stars, K) 1-sigma formal uncertainties (sqrt of the covariance diagonal).
        covariance: (n_stars, K, K) inverse Gauss-Newton Hessian.
        chi2: (n_stars,) chi^2 at the optimum; n_pixels: pixels used per star.
        converged: (n_stars,) bool, the LM iterations stopped on the tolerance.
    """

    labels: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    chi2: np.ndarray
    n_pixels: np.ndarray
    converged: np.ndarray

    @property
    def reduced_chi2(self) -> np.ndarray:
        return self.chi2 / np.maximum(self.n_pixels - self.labels.shape[1], 1)


def _model_and_jacobian(
    x: np.ndarray, theta0: np.ndarray, linear: np.ndarray, quadratic: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Model flux (n, P) and its Jacobian d flux / d x (n, P, K) at scaled labels x (n, K):
    ``f = theta0 + B x + x^T Q x``, ``df/dx = B + 2 Q x`` (torch matmuls, float64)."""
    n_stars, n_labels = x.shape
    n_pixels = theta0.size
    x_t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    q_t = torch.from_numpy(quadratic).reshape(n_pixels * n_labels, n_labels)
    qx = (x_t @ q_t.T).reshape(n_stars, n_pixels, n_labels)  # Q x per star
    model = torch.from_numpy(theta0) + x_t @ torch.from_numpy(linear).T
    model += torch.bmm(qx, x_t[..., None])[..., 0]
    jacobian = qx.mul_(2.0).add_(torch.from_numpy(linear))
    return model.numpy(), jacobian.numpy()


def _chi2_at(x, flux, weights, theta0, linear, quadratic) -> np.ndarray:
    """chi^2 per star at scaled labels x (n, K)."""
    model, _ = _model_and_jacobian(np.clip(x, -1e3, 1e3), theta0, linear, quadratic)
    return np.sum(weights * (flux - model) ** 2, axis=1)


def _gauss_newton_terms(
    jacobian: np.ndarray, weights: np.ndarray, residual: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``J^T W J`` (n, K, K) and ``J^T W r`` (n, K) per star (torch bmm: numpy's stacked
    matmul is an order of magnitude slower for these thin matrices)."""
    jac = torch.from_numpy(jacobian)
    weighted = jac * torch.from_numpy(weights)[..., None]
    hessian = torch.bmm(weighted.transpose(1, 2), jac).numpy()
    if residual is None:
        return hessian, None
    gradient = torch.bmm(weighted.transpose(1, 2), torch.from_numpy(residual)[..., None])
    return hessian, gradient[..., 0].numpy()


def _levenberg_marquardt(
    x: np.ndarray,
    flux: np.ndarray,
    weights: np.ndarray,
    theta0: np.ndarray,
    linear: np.ndarray,
    quadratic: np.ndarray,
    max_iterations: int,
    tolerance: float,
    bound: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised LM over stars; returns (x, chi2, hessian, converged)."""
    n_stars, n_labels = x.shape
    damping = np.full(n_stars, 1e-3)
    converged = np.zeros(n_stars, dtype=bool)
    eye = np.eye(n_labels)
    model, jacobian = _model_and_jacobian(x, theta0, linear, quadratic)
    chi2 = np.sum(weights * (flux - model) ** 2, axis=1)
    for _ in range(max_iterations):
        active = ~converged
        if not np.any(active):
            break
        residual = flux[active] - model[active]
        hessian, gradient = _gauss_newton_terms(jacobian[active], weights[active], residual)
        diag = np.einsum("nkk->nk", hessian)
        damped = hessian + damping[active, None, None] * (diag[:, :, None] * eye + 1e-12 * eye)
        step = np.linalg.solve(damped, gradient[..., None])[..., 0]
        trial = np.clip(x[active] + step, -bound, bound)
        trial_model, trial_jacobian = _model_and_jacobian(trial, theta0, linear, quadratic)
        trial_chi2 = np.sum(weights[active] * (flux[active] - trial_model) ** 2, axis=1)
        better = trial_chi2 <= chi2[active]
        idx = np.nonzero(active)[0]
        improvement = chi2[active] - trial_chi2
        accepted = idx[better]
        x[accepted] = trial[better]
        model[accepted] = trial_model[better]
        jacobian[accepted] = trial_jacobian[better]
        # converged: an accepted step that lowered chi^2 by less than tolerance (absolute;
        # a change of d in chi^2 is a step of ~sqrt(d) sigma), or damping so large that no
        # step helps any more
        small = better & (improvement <= tolerance)
        chi2[accepted] = trial_chi2[better]
        damping[idx] = np.where(better, damping[idx] / 10.0, damping[idx] * 10.0)
        converged[idx[small]] = True
        converged[idx[damping[idx] > 1e10]] = True
    hessian, _ = _gauss_newton_terms(jacobian, weights)
    return x, chi2, hessian, converged


def fit_labels(
    model: CannonModel,
    flux: np.ndarray,
    ivar: np.ndarray,
    initial_labels: np.ndarray | None = None,
    max_iterations: int = 50,
    tolerance: float = 1e-3,
    bound: float = 10.0,
    star_chunk: int = 64,
    lm_starts: int | None = 1,
    screen_starts: bool = False,
    retry_reduced_chi2: float = 2.0,
) -> CannonFit:
    """Labels of each star by Levenberg-Marquardt on the Cannon's chi^2.

    Args:
        model: a trained :class:`CannonModel`.
        flux, ivar: (n_stars, n_pixels) on the training grid; ivar 0 = masked.
        initial_labels: (n_starts, K) or (n_stars, n_starts, K) physical starting points.
            Default: the pivots.
        lm_starts: LM runs from the first ``lm_starts`` candidates for every star (the
            lowest final chi^2 wins); None or 0: from every candidate.
        screen_starts: order the candidates by their chi^2 (one model evaluation each)
            instead of taking them in the given order.
        retry_reduced_chi2: stars whose best reduced chi^2 stays above this are refitted
            from the remaining candidates, one at a time (escapes from local minima).
        max_iterations, tolerance: LM stopping rules; tolerance is the absolute chi^2
            decrease below which an accepted step ends the fit (1e-3: ~0.03 sigma).
        bound: scaled labels are kept within +-bound (scales are ~1/4 of the 95% range).
        star_chunk: stars per vectorised batch (memory ~ 8 * star_chunk * n_pixels * K * 3 B).

    Returns:
        :class:`CannonFit`; stars without a usable pixel get NaN labels.
    """
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    if flux.shape != ivar.shape or flux.shape[1] != model.theta.shape[0]:
        raise ValueError(
            f"flux {flux.shape} and ivar {ivar.shape} do not match the model's "
            f"{model.theta.shape[0]} pixels"
        )
    n_stars, n_labels = flux.shape[0], model.n_labels
    used = model.pixel_used
    theta0, linear, quadratic = (a[used] for a in model.quadratic_form())
    good = np.isfinite(flux[:, used]) & np.isfinite(ivar[:, used]) & (ivar[:, used] > 0)
    weights = np.where(
        good, ivar[:, used] / (1.0 + ivar[:, used] * model.scatter[used] ** 2), 0.0
    )
    flux_used = np.where(good, flux[:, used], 0.0)

    if initial_labels is None:
        starts = np.zeros((n_stars, 1, n_labels))
    else:
        initial = np.asarray(initial_labels, dtype=np.float64)
        if initial.ndim == 2:
            initial = np.broadcast_to(initial, (n_stars,) + initial.shape)
        starts = model.scale(initial)

    labels = np.full((n_stars, n_labels), np.nan)
    covariance = np.full((n_stars, n_labels, n_labels), np.nan)
    chi2 = np.full(n_stars, np.nan)
    converged = np.zeros(n_stars, dtype=bool)
    n_pixels = good.sum(axis=1)
    def run_from(rows: np.ndarray, start_labels: np.ndarray) -> None:
        """LM from start_labels (len(rows), K) for the stars at rows; keep improvements."""
        x, c2, hessian, ok = _levenberg_marquardt(
            start_labels.copy(), flux_used[rows], weights[rows], theta0, linear, quadratic,
            max_iterations, tolerance, bound,
        )
        better = ~(c2 >= chi2[rows])  # also True where chi2 is still NaN
        kept = rows[better]
        labels[kept] = x[better]
        chi2[kept] = c2[better]
        converged[kept] = ok[better]
        with np.errstate(all="ignore"):
            hess = hessian[better]
            cov = np.full_like(hess, np.nan)
            if hess.size:
                invertible = np.linalg.matrix_rank(hess) == n_labels
                if np.any(invertible):
                    cov[invertible] = np.linalg.inv(hess[invertible])
        covariance[kept] = cov

    dof = np.maximum(n_pixels - n_labels, 1)
    for stars in chunks(n_stars, star_chunk):
        rows = np.arange(stars.start, stars.stop)
        candidates = starts[stars]
        order = np.tile(np.arange(candidates.shape[1]), (len(rows), 1))
        if screen_starts and lm_starts and candidates.shape[1] > lm_starts:
            # one chi^2 evaluation per candidate; LM from the lm_starts best ones first
            trial = np.stack([
                _chi2_at(candidates[:, s], flux_used[stars], weights[stars],
                         theta0, linear, quadratic)
                for s in range(candidates.shape[1])
            ], axis=1)
            order = np.argsort(trial, axis=1)
        first = order.shape[1] if not lm_starts else min(lm_starts, order.shape[1])
        for s in range(first):
            run_from(rows, candidates[np.arange(len(rows)), order[:, s]])
        # stars still fitted badly (a local minimum?) try the remaining candidates
        for s in range(first, order.shape[1]):
            poor = rows[chi2[rows] / dof[rows] > retry_reduced_chi2]
            if poor.size == 0:
                break
            local = poor - stars.start
            run_from(poor, candidates[local, order[local, s]])
    no_data = n_pixels == 0
    labels[no_data] = np.nan
    physical = model.unscale(labels)
    physical_cov = covariance * model.scales[None, :, None] * model.scales[None, None, :]
    with np.errstate(invalid="ignore"):
        errors = np.sqrt(np.einsum("nkk->nk", physical_cov))
    return CannonFit(
        labels=physical,
        errors=errors,
        covariance=physical_cov,
        chi2=chi2,
        n_pixels=n_pixels,
        converged=converged,
    )
