"""Fit quality per star: the spectrum rebuilt from its predicted labels with the project's
data-driven spectrum model, and the reduced chi-square of the difference.

The model is the quadratic spectrum model the network's refinement layer carries in the
bundle (``nn.refinement.GaussNewtonRefinement``: The Cannon's form, fitted to the training
split, on the ``refinement_pixels`` pixels where the labels matter most, spread over the
three arms). Per star, in input units (standardised flux):

    chi2_red = sum_p w_p (x_p - f_p(labels))^2 / n_good,   w_p = ivar_p / (1 + ivar_p s_p^2)

with s_p^2 the model's intrinsic scatter (so a training-like star scores about 1 whatever
its S/N) and n_good the model pixels not masked; the same per arm (B, R, Z). A galaxy, a
spectrum at the wrong velocity, a double-lined binary or another instrument's spectrum
cannot be matched by any single-star label set: its chi2_red is large. One batched matrix
product per block of spectra (the design matrix times the model coefficients). The same
residual gives the composite-spectrum score (``nn.binaries``, :func:`fit_statistics`).

``rchi2_floor``: the same over all pixels with a model-error floor in the weights,
w_p = ivar_p / (1 + ivar_p f^2), f = ``nn.binaries.MODEL_FLOOR`` (0.5 of the pixel's training
IQR): at high S/N the quadratic model's own errors for stars unlike most training stars
(bright dwarfs) dominate chi2_red, not the floored one; a galaxy or a wrong velocity leaves
residuals far above the floor. It sets POOR_FIT (``inference.flags``). MOCK, default bundle,
6 coadds: normal spectra above 2 at S/N 5-10 / 10-20 / 20-40 / 40-80 / 80+: 4.7 / 0.6 / 0.6
/ 1.1 / 1.4% (chi2_red above 3: 2.9 / 0.6 / 2.4 / 9.2 / 23.0%, 45% of dwarfs above S/N 80);
at a VRAD off by 150 km/s: 44.6 / 90.2 / 98.0 / 99.8 / 100% (chi2_red: 30.9 / 85.1 / 99.5 /
100 / 100%).
"""
from __future__ import annotations

import numpy as np
import torch

from desi_abundances.desi.grids import ARM_WAVELENGTH_RANGE_ANGSTROM, ARMS
from desi_abundances.nn.binaries import CompositeTemplates, composite_score, floored_weight

CHI2_COLUMNS = ("rchi2", "rchi2_b", "rchi2_r", "rchi2_z", "rchi2_floor")
"""Per-star output columns: overall, per arm, and overall with the model-error floor."""


def arm_boundaries() -> tuple[float, float]:
    """Rest-frame wavelengths (Angstrom) splitting B/R and R/Z: the middle of each overlap."""
    b, r, z = (ARM_WAVELENGTH_RANGE_ANGSTROM[arm] for arm in ARMS)
    return 0.5 * (r[0] + b[1]), 0.5 * (z[0] + r[1])


def arm_matrix(wavelength: np.ndarray) -> np.ndarray:
    """(P, 4) float32 one-hot columns: all pixels, then B, R, Z by :func:`arm_boundaries`."""
    wavelength = np.asarray(wavelength, np.float64)
    b_r, r_z = arm_boundaries()
    arm = np.where(wavelength < b_r, 0, np.where(wavelength < r_z, 1, 2))
    matrix = np.zeros((wavelength.size, 4), np.float32)
    matrix[:, 0] = 1.0
    matrix[np.arange(wavelength.size), 1 + arm] = 1.0
    return matrix


def reduced_chi2(refinement, inputs: torch.Tensor, input_ivar: torch.Tensor,
                 labels: torch.Tensor, arms: torch.Tensor) -> torch.Tensor:
    """(n, 5) reduced chi-square (overall, B, R, Z, overall with the model-error floor) of
    the model at ``labels`` (:data:`CHI2_COLUMNS`).

    Args:
        refinement: the network's ``GaussNewtonRefinement`` (model, pixels, scatter).
        inputs, input_ivar: (n, n_inputs) standardised flux and its inverse variance
            (input units, 0 where masked).
        labels: (n, n_labels) predicted labels, standardised (all the network's labels).
        arms: (P, 4) :func:`arm_matrix` of the model's pixels.

    Returns NaN where a star has no good model pixel (in that arm). Computed in blocks of
    :data:`CHI2_BLOCK_ROWS` stars so that the (rows, P) intermediates stay in cache (three
    times faster than whole batches at the same arithmetic).
    """
    return fit_statistics(refinement, inputs, input_ivar, labels, arms)[0]


def fit_statistics(refinement, inputs: torch.Tensor, input_ivar: torch.Tensor,
                   labels: torch.Tensor, arms: torch.Tensor,
                   templates: CompositeTemplates | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(reduced_chi2, composite)``: :func:`reduced_chi2`'s (n, 5) and, with ``templates``,
    the (n, 2) ``nn.binaries.composite_score`` (score, dv km/s) of the same residual (else
    None), block by block."""
    chi2 = inputs.new_empty(inputs.shape[0], len(CHI2_COLUMNS))
    composite = None if templates is None else inputs.new_empty(inputs.shape[0], 2)
    for start in range(0, inputs.shape[0], CHI2_BLOCK_ROWS):
        rows = slice(start, start + CHI2_BLOCK_ROWS)
        chi2[rows], score = _chi2_block(refinement, inputs[rows], input_ivar[rows],
                                        labels[rows], arms, templates)
        if composite is not None:
            composite[rows, 0], composite[rows, 1] = score
    return chi2, composite


def _per_pixel(sums: torch.Tensor, n_good: torch.Tensor) -> torch.Tensor:
    """Chi-square sums / good-pixel counts; NaN without a good pixel."""
    return torch.where(n_good > 0, sums / n_good.clamp(min=1.0), torch.full_like(sums, float("nan")))


CHI2_BLOCK_ROWS = 256
"""Stars per block of :func:`reduced_chi2` (256 x 2,048 float32 intermediates: 2 MB)."""


def _chi2_block(refinement, inputs: torch.Tensor, input_ivar: torch.Tensor,
                labels: torch.Tensor, arms: torch.Tensor,
                templates: CompositeTemplates | None = None):
    """(reduced chi-squares, :data:`CHI2_COLUMNS`) of one block of stars, and the composite
    (score, dv) with ``templates`` (else None)."""
    pixels = refinement.pixel_index
    flux = torch.index_select(inputs, 1, pixels)
    ivar = torch.index_select(input_ivar, 1, pixels)
    weight = refinement.weight(ivar, refinement.intrinsic_variance)
    model = refinement.design(labels[:, refinement.label_index]) @ refinement.coefficients
    residual = flux.sub_(model)  # in place: index_select made a copy
    good = (ivar > 0).to(residual.dtype) @ arms
    floor_weight = floored_weight(ivar)
    rchi2_floor = _per_pixel((residual * floor_weight).mul_(residual).sum(dim=1), good[:, 0])
    composite = (None if templates is None
                 else composite_score(residual, floor_weight, rchi2_floor, templates))
    rchi2 = _per_pixel(residual.square_().mul_(weight) @ arms, good)
    return torch.cat([rchi2, rchi2_floor[:, None]], dim=1), composite


def hessian_variance(hessian: torch.Tensor) -> torch.Tensor:
    """(n, K) diagonal of the inverse of (n, K, K) matrices J^T W J + prior I (Cholesky)."""
    factor = torch.linalg.cholesky(hessian)
    eye = torch.eye(hessian.shape[-1], dtype=hessian.dtype, device=hessian.device)
    return torch.cholesky_solve(eye.expand_as(hessian), factor).diagonal(dim1=1, dim2=2)


def fisher_variance(refinement, input_ivar: torch.Tensor, prior: float = 1.0) -> torch.Tensor:
    """(n, K) variance of the model's labels (standardised units) from this star's own pixel
    noise: the diagonal of (J^T W J + prior I)^-1, J the model's Jacobian at the median star,
    W the pixel weights (noise and intrinsic scatter). ``prior``: a unit Gaussian prior in
    standardised labels keeps the variance finite where the spectrum says nothing."""
    weight = refinement.weight(torch.index_select(input_ivar, 1, refinement.pixel_index),
                               refinement.intrinsic_variance)
    fisher = refinement.fisher(weight)
    fisher.diagonal(dim1=1, dim2=2).add_(prior)
    return hessian_variance(fisher)
