"""The Cannon: a data-driven, per-pixel polynomial model of spectra in the labels.

Implemented here after Ness et al. (2015, ApJ 808, 16) with the many-label practice of
Casey et al. (2016, arXiv:1603.03040), because the ``thecannon`` name on PyPI installs
``TheCannon`` 0.7.3 (2018): research code with debugging prints, a per-star scipy loop
and no way to handle missing labels, far too slow for 24 labels. numpy only, no Kedro.

Model. Labels are scaled, ``x = (label - pivot) / scale`` (pivot: median, scale: a quarter of
the 2.5-97.5 percentile range, as in Casey et al.). At pixel ``p`` the normalised flux of star
``n`` is ``f_np = theta_p . a(x_n) + noise`` with the design vector ``a(x) = [1, x_k, x_i x_j
(i <= j)]`` (quadratic: ``1 + K + K(K+1)/2`` terms, 325 for 24 labels) and noise variance
``1/ivar_np + s_p^2`` where ``s_p`` is the pixel's intrinsic scatter.

Training (per pixel, vectorised over pixels in chunks) alternates
1. ``theta_p``: weighted least squares with weights ``w_np = ivar_np / (1 + ivar_np s_p^2)``
   plus a ridge penalty ``lambda * mean(diag)`` on the non-constant terms (a scale-free L2
   regulariser; Casey et al. use L1, which has no closed form and is left out for speed);
2. ``s_p``: maximum likelihood over a logarithmic grid of scatters (refined by a parabola),
starting from ``s = 0``. The normal matrices ``sum_n w_np a_n a_n^T`` are built from the
unique monomials of degree <= 4 of the labels (20475 for 24 labels instead of 325^2 products),
a single matrix product per pixel chunk.

Test step (``cannon_fit``): for each star, the labels minimise ``chi^2 = sum_p w_np (f_np - theta_p . a(x))^2``
by Levenberg-Marquardt, vectorised over stars; the label covariance is the inverse of the
Gauss-Newton Hessian ``J^T W J`` at the optimum (the formal Cannon uncertainty).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from desi_abundances.maths.polynomial import design_matrix, quadratic_pairs, term_exponents

logger = logging.getLogger(__name__)


def _unique_products(exponents: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map each pair of terms (s, t) to a unique monomial ``a_s * a_t``.

    Returns:
        first, second: (n_unique,) a term pair representing each unique monomial;
        index: (n_terms, n_terms) the unique monomial of each pair.
    """
    n_terms = exponents.shape[0]
    lookup: dict[bytes, int] = {}
    first, second = [], []
    index = np.empty((n_terms, n_terms), dtype=np.int64)
    for s in range(n_terms):
        for t in range(s, n_terms):
            key = (exponents[s] + exponents[t]).tobytes()
            u = lookup.get(key)
            if u is None:
                u = lookup[key] = len(first)
                first.append(s)
                second.append(t)
            index[s, t] = index[t, s] = u
    return np.array(first), np.array(second), index


# --- the model -----------------------------------------------------------------------------
@dataclass
class CannonModel:
    """A trained Cannon.

    Attributes:
        label_names: the labels modelled, in column order.
        pivots, scales: (K,) label scaling, physical units (K, dex).
        order: polynomial order (2 = quadratic).
        theta: (n_pixels, n_terms) coefficients.
        scatter: (n_pixels,) intrinsic scatter s_p (flux units).
        pixel_used: (n_pixels,) bool; pixels without enough training data are ignored.
        regularization: the ridge strength used in training.
        training_chi2: (n_pixels,) reduced chi^2 of the training fit per pixel.
    """

    label_names: list[str]
    pivots: np.ndarray
    scales: np.ndarray
    order: int
    theta: np.ndarray
    scatter: np.ndarray
    pixel_used: np.ndarray
    regularization: float
    training_chi2: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def n_labels(self) -> int:
        return len(self.label_names)

    def scale(self, labels: np.ndarray) -> np.ndarray:
        return (np.asarray(labels, np.float64) - self.pivots) / self.scales

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        return np.asarray(scaled, np.float64) * self.scales + self.pivots

    def predict_flux(self, labels: np.ndarray) -> np.ndarray:
        """Model spectra of physical labels (n_stars, K) -> (n_stars, n_pixels)."""
        return design_matrix(self.scale(labels), self.order) @ self.theta.T

    def quadratic_form(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``theta0 (P,), B (P, K), Q (P, K, K)`` with ``f = theta0 + B x + x^T Q x``."""
        n_labels = self.n_labels
        theta0 = self.theta[:, 0]
        linear = self.theta[:, 1 : 1 + n_labels]
        quadratic = np.zeros((self.theta.shape[0], n_labels, n_labels))
        if self.order == 2:
            i, j = quadratic_pairs(n_labels)
            coeffs = self.theta[:, 1 + n_labels :]
            off = i != j
            quadratic[:, i[~off], j[~off]] = coeffs[:, ~off]
            quadratic[:, i[off], j[off]] = coeffs[:, off] / 2
            quadratic[:, j[off], i[off]] = coeffs[:, off] / 2
        return theta0, linear, quadratic


def label_scaling(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pivots (median) and scales (quarter of the 2.5-97.5 percentile range) per label."""
    low, mid, high = np.percentile(labels, [2.5, 50.0, 97.5], axis=0)
    scales = (high - low) / 4.0
    scales = np.where(scales > 0, scales, 1.0)
    return mid, scales


def chunks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` covering ``range(n)``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _log_likelihood_of_scatter(
    residual2: np.ndarray, variance: np.ndarray, good: np.ndarray, scatter2: float
) -> np.ndarray:
    """Per-pixel log likelihood (up to a constant) of one trial scatter^2, (n_pixels,)."""
    total = variance + scatter2
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(good, residual2 / total + np.log(total), 0.0)
    return -0.5 * terms.sum(axis=0)


def _best_scatter(
    residual2: np.ndarray, ivar: np.ndarray, scatter_grid: np.ndarray
) -> np.ndarray:
    """Maximum-likelihood scatter per pixel from a grid, refined by a parabola in log s."""
    good = ivar > 0
    variance = np.where(good, 1.0 / np.where(good, ivar, 1.0), 0.0)
    log_like = np.stack(
        [_log_likelihood_of_scatter(residual2, variance, good, s * s) for s in scatter_grid]
    )  # (n_grid, n_pixels)
    best = np.argmax(log_like, axis=0)
    scatter = scatter_grid[best].copy()
    # parabolic refinement in log s on interior grid points (grid[0] is 0: no refinement)
    inner = (best > 1) & (best < len(scatter_grid) - 1)
    if np.any(inner):
        cols = np.nonzero(inner)[0]
        b = best[inner]
        y0, y1, y2 = log_like[b - 1, cols], log_like[b, cols], log_like[b + 1, cols]
        log_grid = np.log(scatter_grid[1:])
        step = log_grid[1] - log_grid[0]
        denominator = y0 - 2 * y1 + y2
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(denominator < 0, 0.5 * (y0 - y2) / denominator, 0.0)
        shift = np.clip(shift, -0.5, 0.5)
        scatter[inner] = np.exp(np.log(scatter_grid[b]) + shift * step)
    return scatter


def _solve_normal_equations(normal: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve a stack of symmetric systems (P, T, T) x = (P, T) by Cholesky (torch, batched);
    the few that are not positive definite fall back to least squares."""
    normal_t = torch.from_numpy(normal)
    rhs_t = torch.from_numpy(rhs)[..., None]
    factor, info = torch.linalg.cholesky_ex(normal_t)
    solution = torch.cholesky_solve(rhs_t, factor)[..., 0].numpy()
    failed = np.nonzero(info.numpy() != 0)[0]
    for p in failed:
        solution[p] = np.linalg.lstsq(normal[p], rhs[p], rcond=None)[0]
    return solution


def train_cannon(
    labels: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    label_names: Sequence[str],
    order: int = 2,
    regularization: float = 1e-6,
    n_scatter_iterations: int = 2,
    min_stars_per_pixel: int | None = None,
    pixel_chunk: int = 256,
    star_chunk: int = 2048,
    cache_mb: float = 1024.0,
) -> CannonModel:
    """Train a Cannon on stars with complete labels.

    Args:
        labels: (n_stars, K) physical labels (K, dex); must all be finite.
        flux: (n_stars, n_pixels) continuum-normalised flux.
        ivar: (n_stars, n_pixels) inverse variance, 0 for masked pixels.
        label_names: K names.
        order: 1 (linear) or 2 (quadratic, the Cannon's default).
        regularization: ridge strength on the non-constant terms, as a fraction of the mean
            diagonal of each pixel's normal matrix (scale-free; 0 = none).
        n_scatter_iterations: rounds of (scatter, coefficients) updates after the first fit
            with zero scatter; 0 keeps s = 0.
        min_stars_per_pixel: pixels with fewer stars with ivar > 0 are not modelled; default
            the number of terms.
        pixel_chunk, star_chunk: chunk sizes bounding memory (about
            ``8 * (pixel_chunk + star_chunk) * n_unique_monomials`` bytes, 20475 monomials
            for 24 labels, plus ``8 * pixel_chunk * n_terms^2`` for the normal matrices).
        cache_mb: the star monomials (``8 * n_stars * n_unique_monomials`` bytes) are kept
            between pixel chunks when they fit in this many MiB, else recomputed.

    Raises:
        ValueError: on shape mismatches, non-finite labels or too few stars.
    """
    labels = np.asarray(labels, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    n_stars, n_labels = labels.shape
    if len(label_names) != n_labels:
        raise ValueError(f"{len(label_names)} label names for {n_labels} label columns")
    if flux.shape != ivar.shape or flux.shape[0] != n_stars:
        raise ValueError(
            f"labels {labels.shape}, flux {flux.shape} and ivar {ivar.shape} disagree"
        )
    if not np.all(np.isfinite(labels)):
        bad = sorted({label_names[k] for k in np.nonzero(~np.isfinite(labels))[1]})
        raise ValueError(f"training labels must be finite; non-finite values in {bad}")
    ivar = np.where(np.isfinite(ivar) & (ivar > 0) & np.isfinite(flux), ivar, 0.0)
    flux = np.where(ivar > 0, flux, 0.0)

    exponents = term_exponents(n_labels, order)
    n_terms = exponents.shape[0]
    if n_stars < 2:
        raise ValueError(f"The Cannon needs training stars; got {n_stars}")
    pivots, scales = label_scaling(labels)
    design = design_matrix((labels - pivots) / scales, order)
    first, second, pair_index = _unique_products(exponents)
    min_stars = n_terms if min_stars_per_pixel is None else min_stars_per_pixel
    pixel_used = (ivar > 0).sum(axis=0) >= min_stars

    n_pixels = flux.shape[1]
    theta = np.zeros((n_pixels, n_terms))
    scatter = np.zeros(n_pixels)
    scatter_grid = np.concatenate([[0.0], np.logspace(-4, 0, 41)])
    penalised = np.arange(1, n_terms)  # every term but the constant

    # unique monomials of each star chunk, (n_unique, n_chunk): cached while they fit
    star_slices = list(chunks(n_stars, star_chunk))
    design_t = np.ascontiguousarray(design.T)
    cache_ok = first.size * n_stars * 8 <= cache_mb * 2**20
    cache: dict[int, np.ndarray] = {}

    def monomials(k: int) -> np.ndarray:
        if k in cache:
            return cache[k]
        stars = star_slices[k]
        values = design_t[first, stars] * design_t[second, stars]
        if cache_ok:
            cache[k] = values
        return values

    started = time.perf_counter()
    for iteration in range(n_scatter_iterations + 1):
        logger.info(
            "The Cannon: coefficient pass %d/%d (%d stars, %d pixels, %d terms), %.0f s so far",
            iteration + 1, n_scatter_iterations + 1, n_stars, int(pixel_used.sum()), n_terms,
            time.perf_counter() - started,
        )
        for pixels in chunks(n_pixels, pixel_chunk):
            used = np.nonzero(pixel_used[pixels])[0] + pixels.start
            if used.size == 0:
                continue
            weights = ivar[:, used] / (1.0 + ivar[:, used] * scatter[used] ** 2)
            sums = np.zeros((used.size, first.size))
            rhs = np.zeros((used.size, n_terms))
            for k, stars in enumerate(star_slices):
                sums += weights[stars].T @ monomials(k).T
                rhs += (weights[stars] * flux[stars][:, used]).T @ design[stars]
            normal = np.take(sums, pair_index, axis=1)  # (n_used, T, T)
            del sums
            diagonal_scale = np.einsum("pii->p", normal) / n_terms
            normal[:, penalised, penalised] += (regularization * diagonal_scale)[:, None]
            theta[used] = _solve_normal_equations(normal, rhs)
        if iteration == n_scatter_iterations:
            break
        for pixels in chunks(n_pixels, pixel_chunk):
            used = np.nonzero(pixel_used[pixels])[0] + pixels.start
            if used.size == 0:
                continue
            residual2 = (flux[:, used] - design @ theta[used].T) ** 2
            scatter[used] = _best_scatter(residual2, ivar[:, used], scatter_grid)

    training_chi2 = np.full(n_pixels, np.nan)
    for pixels in chunks(n_pixels, pixel_chunk):
        used = np.nonzero(pixel_used[pixels])[0] + pixels.start
        if used.size == 0:
            continue
        weights = ivar[:, used] / (1.0 + ivar[:, used] * scatter[used] ** 2)
        residual2 = (flux[:, used] - design @ theta[used].T) ** 2
        dof = np.maximum((weights > 0).sum(axis=0) - n_terms, 1)
        training_chi2[used] = (weights * residual2).sum(axis=0) / dof

    return CannonModel(
        label_names=list(label_names),
        pivots=pivots,
        scales=scales,
        order=order,
        theta=theta,
        scatter=scatter,
        pixel_used=pixel_used,
        regularization=float(regularization),
        training_chi2=training_chi2,
    )
