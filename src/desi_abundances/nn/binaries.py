"""Composite (double-lined) spectra: a second line pattern at another velocity in what the
single-star spectrum model leaves over.

A double-lined binary's continuum-normalised flux is ``(1 - w) F1 + w F2(dv)`` (``w`` the
secondary's share of the light, ``dv`` the velocity difference). The single-star model
(``nn.refinement.GaussNewtonRefinement``'s quadratic model, on its pixels, in standardised
input units) absorbs the blend at zero velocity by changing the labels, and leaves the
secondary's lines at ``dv``. A matched filter finds them: for each velocity ``v`` of a grid,
the template

    B(v)_p = (m(lambda_p / (1 + v/c)) - 1) / iqr_p

(``m`` the training set's median spectrum, ``bundle.pixel_median``: a typical star's line
pattern moved by ``v``; ``iqr`` the input scaling) is fitted to the residual ``r = x - f(labels)``
after removing from it, once for all stars, what the single-star model could do instead
(least squares on the constant, the model's Jacobian at the median star, the unshifted line
pattern, its velocity derivative and the pattern moved by :data:`NUISANCE_SHIFTS_KMS`): the
templates' orthogonal complement ``T(v)``. Per star

    dchi2(v) = (T(v)^T W r)^2 / (T(v)^T W T(v))   (0 where the amplitude is negative: emission)
    score    = max_v dchi2(v) / max(1, sum_p w_p r_p^2 / n_good)

with ``w_p = ivar_p / (1 + ivar_p floor^2)``: the pixel's weight with a model-error floor
(:data:`MODEL_FLOOR`, input units) so that the model's own errors at high S/N do not pass for
a second star, and the division by the floored reduced chi-square (the residual's scale).
``score`` is the improvement in chi-square, in units of the residual's scale, of the best
second component; ``composite_dv_kms`` its velocity. A normal star scores a few; a resolved
composite (|dv| >~ 80 km/s) tens to thousands. A spectrum at a wrong velocity (>~ 50 km/s)
scores high too (its own lines at the offset); at |dv| below the resolution (~50 km/s) a
composite is a blend the test cannot tell from a single star.

Cost: two (n, P) x (P, V) matrix products per block of stars (P = 2,048 pixels, V = 18
velocities), on the residual the fit-quality chi-square computes anyway (``nn.fit_quality``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from desi_abundances.physics import SPEED_OF_LIGHT_KMS

COMPOSITE_COLUMNS = ("composite_score", "composite_dv_kms")
"""Per-star output columns: the score and the best second component's velocity (km/s)."""

VELOCITIES_KMS = np.concatenate([-np.arange(400.0, 79.0, -40.0), np.arange(80.0, 401.0, 40.0)])
"""Velocities of the second component tried (km/s): 80-400 km/s each side in 40 km/s steps
(the resolution FWHM is 60-150 km/s, the pixels 25-65 km/s wide). On the MOCK, 20 km/s steps
found the same composites with twice the matrix products."""

NUISANCE_SHIFTS_KMS = (-30.0, 30.0)
"""The line pattern moved by these velocities (km/s) is also something a single star can do
(a VRAD off by up to ~30 km/s, e.g. a single-lined binary's): projected out of the templates.
On the MOCK it halved the normal stars scoring high at +-40 km/s (VRAD errors) and raised
the composites found at |dv| > 100 km/s; those at |dv| < 50 km/s, blends, are found less."""

MODEL_FLOOR = 0.5
"""Model-error floor of a pixel (input units, i.e. in units of the training set's IQR of the
pixel): without it the model's own errors at high S/N score like a second star. MOCK, at
1% of normal stars added to the flagged: composites found 62% with no floor, 70% with 0.4-0.6
(0.3-0.8 alike)."""

DERIVATIVE_STEP_KMS = 5.0
"""Velocity step (km/s) of the line pattern's numerical derivative (a nuisance column)."""


@dataclass(frozen=True)
class CompositeTemplates:
    """The matched filters of :func:`composite_score`: ``templates`` (P, V) float32 on the
    model's pixels, their squares ``squared``, ``velocities`` (V,) km/s."""

    templates: torch.Tensor
    squared: torch.Tensor
    velocities: np.ndarray


def shifted_pattern(wavelength: np.ndarray, median: np.ndarray, at: np.ndarray,
                    velocity_kms: float) -> np.ndarray:
    """The median spectrum moved by ``velocity_kms`` (positive: redder), at wavelengths ``at``
    (Angstrom), linear interpolation of (``wavelength``, ``median``)."""
    return np.interp(at / (1.0 + velocity_kms / SPEED_OF_LIGHT_KMS), wavelength, median)


def composite_templates(wavelength: np.ndarray, pixel_median: np.ndarray, pixel_iqr: np.ndarray,
                        pixel_index: np.ndarray, jacobian: np.ndarray,
                        velocities: np.ndarray = VELOCITIES_KMS) -> CompositeTemplates:
    """Second-component templates on the model's pixels, orthogonal to what a single star can
    do (module docstring).

    Args:
        wavelength, pixel_median, pixel_iqr: the bundle's rest-frame grid (Angstrom), median
            normalised flux and IQR per pixel (all pixels).
        pixel_index: (P,) the model's pixels (``refinement.pixel_index``).
        jacobian: (P, K) the model's d flux / d labels at the median star (input units).
        velocities: (V,) km/s of the second component.
    """
    wavelength = np.asarray(wavelength, np.float64)
    median = np.asarray(pixel_median, np.float64)
    pixels = np.asarray(pixel_index)
    at, iqr = wavelength[pixels], np.asarray(pixel_iqr, np.float64)[pixels]
    velocities = np.asarray(velocities, np.float64)
    pattern = np.stack([shifted_pattern(wavelength, median, at, v) for v in velocities], axis=1)
    pattern = (pattern - 1.0) / iqr[:, None]
    step = DERIVATIVE_STEP_KMS
    derivative = (shifted_pattern(wavelength, median, at, step)
                  - shifted_pattern(wavelength, median, at, -step)) / (2.0 * step) / iqr
    moved = [(shifted_pattern(wavelength, median, at, v) - 1.0) / iqr for v in NUISANCE_SHIFTS_KMS]
    nuisance = np.column_stack([np.ones(pixels.size), np.asarray(jacobian, np.float64),
                                (median[pixels] - 1.0) / iqr, derivative, *moved])
    basis, _ = np.linalg.qr(nuisance)
    templates = pattern - basis @ (basis.T @ pattern)
    templates = torch.from_numpy(templates.astype(np.float32))
    return CompositeTemplates(templates, templates.square(), velocities)


def network_templates(refinement, wavelength: np.ndarray, pixel_median: np.ndarray,
                      pixel_iqr: np.ndarray) -> CompositeTemplates:
    """:func:`composite_templates` of a network's refinement layer (its pixels and Jacobian)
    and its bundle's grid, median and IQR; made once per layer and kept on it (interpolations and a QR
    of a (P, ~20) matrix: milliseconds to tens of them, too much to repeat per coadd)."""
    cached = getattr(refinement, CACHE_ATTRIBUTE, None)
    if cached is None:
        cached = composite_templates(wavelength, pixel_median, pixel_iqr,
                                     refinement.pixel_index.numpy(), refinement.jacobian.numpy())
        setattr(refinement, CACHE_ATTRIBUTE, cached)
    return cached


CACHE_ATTRIBUTE = "_composite_templates"
"""Attribute of a refinement layer holding its :func:`network_templates`."""


def floored_weight(ivar: torch.Tensor, floor: float = MODEL_FLOOR) -> torch.Tensor:
    """w = ivar / (1 + ivar floor^2): a pixel's weight with a model-error floor (input units)."""
    return ivar.mul(floor**2).add_(1.0).reciprocal_().mul_(ivar)


def composite_score(residual: torch.Tensor, weight: torch.Tensor, rchi2_floor: torch.Tensor,
                    templates: CompositeTemplates) -> tuple[torch.Tensor, torch.Tensor]:
    """``(score, dv_kms)`` per star (module docstring) from the single-star residual and its
    :func:`floored_weight` on the model's pixels, (n, P) in input units (weight 0 where
    masked), and the residual's scale ``rchi2_floor`` (n,): sum_p w_p r_p^2 / n_good, NaN for
    a star without a good pixel (``nn.fit_quality`` computes it once for POOR_FIT and this).
    NaN where ``rchi2_floor`` is."""
    amplitude = (residual * weight) @ templates.templates
    norm = weight @ templates.squared
    gain = amplitude.clamp(min=0.0).square_().div_(norm.clamp_(min=1e-30))
    best, where = gain.max(dim=1)
    good = torch.isfinite(rchi2_floor)
    score = best / rchi2_floor.clamp(min=1.0)
    dv = torch.from_numpy(templates.velocities.astype(np.float32))[where]
    return score, torch.where(good, dv, torch.full_like(dv, float("nan")))
