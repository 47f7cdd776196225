"""The Cramer-Rao bound: the smallest label uncertainty any unbiased method can reach.

For a spectrum with Gaussian noise of inverse variance ``ivar`` and a differentiable model
f(labels), the Fisher matrix is F = J^T diag(ivar) J with J = d f / d labels (n_pixels x
n_labels). The bound on label i, marginalised over all the others, is sqrt((F^-1)_ii); the
conditional bound (all other labels known) is 1 / sqrt(F_ii). Everything is batched over
stars; uncertainties come out in the labels' units (K, dex).

A label to which the spectrum does not respond (a zero Jacobian column) has an infinite bound
and is left out of the inversion for the others.

``information_limit`` builds on these: the Jacobian of the model that generated the spectra
(finite differences of the analytic mock model, or autograd of the emulator), projected onto
the data pixels with :func:`project_jacobian`, and the evaluation's ratio of the network's
scatter to the bound.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.autograd.forward_ad as fwAD


def model_jacobian(flux_model: Callable[[torch.Tensor], torch.Tensor],
                   labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """d flux / d labels for each star: (n_stars, n_pixels, n_labels), by forward-mode autograd.

    ``flux_model`` maps (n, n_labels) physical labels to (n, n_pixels) flux (rows independent).
    """
    labels = (labels.to(torch.float32) if isinstance(labels, torch.Tensor)
              else torch.tensor(np.asarray(labels, dtype=np.float32)))  # a copy: writable
    if labels.ndim != 2:
        raise ValueError(f"labels must be (n_stars, n_labels), got shape {tuple(labels.shape)}")
    columns = []
    with fwAD.dual_level():  # forward mode: one pass per label, whatever the pixel count
        for j in range(labels.shape[1]):
            tangent = torch.zeros_like(labels)
            tangent[:, j] = 1.0
            flux = flux_model(fwAD.make_dual(labels, tangent))
            columns.append(fwAD.unpack_dual(flux).tangent.detach())
    return torch.stack(columns, dim=-1)


def project_jacobian(jacobian: np.ndarray, projection) -> np.ndarray:
    """The Jacobian on the data pixels: ``projection @ jacobian[s]`` for every star s.

    jacobian: (n_stars, n_model_pixels, n_labels); projection: (n_pixels, n_model_pixels),
    numpy or scipy.sparse (e.g. the instrument's LSF + resampling matrix). Returns
    (n_stars, n_pixels, n_labels) float64, computed as ONE sparse product with the stars'
    columns side by side (far faster than a product per star).
    """
    jacobian = np.asarray(jacobian)
    if jacobian.ndim != 3 or jacobian.shape[1] != projection.shape[1]:
        raise ValueError(f"jacobian {jacobian.shape} does not match projection "
                         f"{tuple(projection.shape)}: expected (n_stars, {projection.shape[1]}, "
                         "n_labels)")
    n_stars, n_model, n_labels = jacobian.shape
    side_by_side = np.ascontiguousarray(
        jacobian.transpose(1, 0, 2).reshape(n_model, n_stars * n_labels), dtype=np.float64)
    projected = np.asarray(projection.astype(np.float64) @ side_by_side)
    return np.ascontiguousarray(projected.reshape(-1, n_stars, n_labels).transpose(1, 0, 2))


def fisher_matrix(jacobian: torch.Tensor | np.ndarray, ivar: torch.Tensor | np.ndarray) -> torch.Tensor:
    """F = J^T diag(ivar) J per star: (n_stars, n_labels, n_labels), float64.

    jacobian: (n_stars, n_pixels, n_labels); ivar: (n_stars, n_pixels), 0 for masked pixels.
    """
    jacobian = torch.as_tensor(jacobian, dtype=torch.float64)
    ivar = torch.as_tensor(ivar, dtype=torch.float64)
    if jacobian.ndim != 3 or ivar.shape != jacobian.shape[:2]:
        raise ValueError(f"jacobian {tuple(jacobian.shape)} and ivar {tuple(ivar.shape)} "
                         "must be (n_stars, n_pixels, n_labels) and (n_stars, n_pixels)")
    if torch.any(ivar < 0) or not torch.all(torch.isfinite(ivar)):
        raise ValueError("ivar must be finite and non-negative")
    return torch.einsum("spi,sp,spj->sij", jacobian, ivar, jacobian)


def cramer_rao_from_fisher(fisher: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(marginalised, conditional) 1-sigma bounds, each (n_stars, n_labels).

    Marginalised = sqrt(diag(F^-1)), computed on the correlation-scaled matrix for numerical
    stability (labels in K and dex differ by 10^6 in F); labels with F_ii = 0 get inf and
    are excluded from the inversion. A singular remainder (perfectly degenerate labels)
    gives inf for the labels involved.
    """
    fisher = torch.as_tensor(fisher, dtype=torch.float64)
    diagonal = torch.diagonal(fisher, dim1=-2, dim2=-1)
    informative = diagonal > 0
    scale = torch.where(informative, diagonal.sqrt(), torch.ones_like(diagonal))
    scaled = fisher / (scale[..., :, None] * scale[..., None, :])
    eye = torch.eye(fisher.shape[-1], dtype=torch.float64).expand_as(scaled)
    both = informative[..., :, None] & informative[..., None, :]
    scaled = torch.where(both, scaled, eye)
    inverse, info = torch.linalg.inv_ex(scaled)
    variance = torch.diagonal(inverse, dim1=-2, dim2=-1) / scale**2
    singular = (info != 0)[..., None] | (variance <= 0) | ~torch.isfinite(variance)
    marginal = torch.where(informative & ~singular, variance.clamp_min(0).sqrt(),
                           torch.full_like(variance, np.inf))
    conditional = torch.where(informative, 1.0 / diagonal.clamp_min(1e-300).sqrt(),
                              torch.full_like(diagonal, np.inf))
    return marginal.numpy(), conditional.numpy()


def cramer_rao_bound(flux_model: Callable[[torch.Tensor], torch.Tensor],
                     labels: torch.Tensor | np.ndarray, ivar: torch.Tensor | np.ndarray,
                     label_names: Sequence[str] | None = None, batch_size: int = 256,
                     projection=None) -> pd.DataFrame | np.ndarray:
    """Marginalised Cramer-Rao bound on every label for each star.

    Args:
        flux_model: differentiable (n, n_labels) -> (n, n_pixels) model on the SAME pixels
            as ``ivar`` (e.g. an emulator followed by the instrument's resolution + resampling).
        labels: (n_stars, n_labels) physical labels where the Jacobian is evaluated.
        ivar: (n_stars, n_pixels) inverse variance of the normalised flux (0 = masked).
        label_names: when given, returns a DataFrame with ``<label>_crb`` columns; else an
            (n_stars, n_labels) array.
        projection: optional (n_pixels, n_model_pixels) matrix (numpy or scipy.sparse), a
            linear map from the model's grid to the data pixels (e.g. the mock's
            ``instrument.lsf_matrix``: LSF convolution + resampling). The model's Jacobian is
            projected with it, so ``flux_model`` can be the bare emulator.
    """
    labels = torch.as_tensor(labels, dtype=torch.float32)
    ivar = torch.as_tensor(ivar, dtype=torch.float64)
    if ivar.shape[0] != labels.shape[0]:
        raise ValueError(f"{labels.shape[0]} label rows but {ivar.shape[0]} ivar rows")
    bounds = []
    for start in range(0, labels.shape[0], batch_size):
        jac = model_jacobian(flux_model, labels[start : start + batch_size])
        if projection is not None:
            jac = torch.from_numpy(project_jacobian(jac.numpy(), projection))
        marginal, _ = cramer_rao_from_fisher(fisher_matrix(jac, ivar[start : start + batch_size]))
        bounds.append(marginal)
    result = np.concatenate(bounds) if bounds else np.empty((0, labels.shape[1]))
    if label_names is None:
        return result
    if len(label_names) != labels.shape[1]:
        raise ValueError(f"{len(label_names)} label names for {labels.shape[1]} labels")
    return pd.DataFrame(result, columns=[f"{name}_crb" for name in label_names])
