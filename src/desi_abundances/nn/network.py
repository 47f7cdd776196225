"""The label network: an MLP on standardised pixels with a linear skip path, predicting a mean
and a log-variance for every label (standardised units)."""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from desi_abundances.defaults import with_defaults
from desi_abundances.nn.feature_density import DEFAULT_RANK, FeatureDensity
from desi_abundances.nn.refinement import GaussNewtonRefinement

ACTIVATIONS = {"silu": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh,
               "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}

DEFAULT_ARCHITECTURE: dict[str, Any] = {
    "hidden_sizes": [512, 512, 512, 512, 512],
    "activation": "silu",
    "dropout": 0.2,
    "linear_skip": True,
    "input_components": 64,
    "ridge_inputs": True,
    "refinement_pixels": 0,
    "refinement_damping": 1.0,
    "refinement_labels": [],
    "feature_density_rank": DEFAULT_RANK,
}
"""Defaults of the architecture (``params:training.architecture`` overrides them)."""


def architecture_for(n_inputs: int, n_labels: int, settings: dict[str, Any] | None) -> dict:
    """Complete architecture dict (JSON-able) for ``n_inputs`` pixels and ``n_labels`` labels.

    Raises:
        ValueError: on an unknown key or activation.
    """
    full = with_defaults(DEFAULT_ARCHITECTURE, settings, "architecture")
    if full["ridge_inputs"] and not full["linear_skip"]:
        raise ValueError("ridge_inputs needs linear_skip (the MLP reads the skip path's "
                         "predictions): set ridge_inputs: false as well")
    if int(full["refinement_pixels"]) > 0 and not full["linear_skip"]:
        raise ValueError("refinement_pixels needs linear_skip (the Gauss-Newton step starts "
                         "from the skip path's labels)")
    if full["activation"] not in ACTIVATIONS:
        raise ValueError(f"unknown activation {full['activation']!r}; one of {sorted(ACTIVATIONS)}")
    return {
        "n_inputs": int(n_inputs),
        "n_labels": int(n_labels),
        "hidden_sizes": [int(size) for size in full["hidden_sizes"]],
        "activation": str(full["activation"]),
        "dropout": float(full["dropout"]),
        "linear_skip": bool(full["linear_skip"]),
        "input_components": int(full["input_components"]),
        "ridge_inputs": bool(full["ridge_inputs"]),
        "refinement_pixels": int(full["refinement_pixels"]),
        "refinement_damping": float(full["refinement_damping"]),
        "refinement_labels": [int(index) for index in full["refinement_labels"]],
        "feature_density_rank": int(full["feature_density_rank"]),
    }


class NetworkOutputs(NamedTuple):
    """What :meth:`LabelNetwork.outputs` returns (standardised label units)."""

    mean: torch.Tensor
    """(n, n_labels) label means."""
    log_variance: torch.Tensor
    """(n, n_labels) log of the network's own (aleatoric) variance."""
    hessian: torch.Tensor | None
    """(n, K, K) the refinement step's J^T W J + damping I (``with_hessian``), else None."""
    leverage: torch.Tensor | None
    """(n,) leverage of the last hidden features (``nn.feature_density``), else None."""


class LabelNetwork(nn.Module):
    """MLP ``n_inputs -> hidden_sizes -> 2 n_labels`` (mean, log-variance per label).

    A linear map from the pixels straight to the label means (``linear_skip``) runs beside
    the MLP: label transfer from normalised spectra is close to linear near the training
    set, so training sets it to the closed-form ridge solution (``nn.linear.fit_ridge``,
    then frozen) and the MLP learns only the non-linear rest.

    With ``input_components`` k > 0 the MLP reads the first k whitened principal components
    of the training inputs (a fixed linear layer, ``projection``, set at training time)
    instead of the pixels: with a few thousand training stars and 7,781 pixels that removes
    most of the room to fit pixel noise, lets training run on (n, k) arrays (fast on a CPU)
    and makes the forward pass cheap.

    With ``ridge_inputs`` (needs ``linear_skip``) the MLP also reads the skip path's label
    predictions, so it can correct them as a function of the predicted labels themselves.

    With ``refinement_pixels`` P > 0 (needs ``linear_skip``) a fixed layer
    (``nn.refinement.GaussNewtonRefinement``) takes one Gauss-Newton step from the skip
    path's labels on a quadratic model of the spectra, weighting P pixels by this star's own
    inverse variance: the mean becomes skip + step + MLP, and the MLP also reads the step.
    The forward pass then needs ``input_ivar`` (inverse variance of the inputs, input units,
    0 where masked) beside the inputs. ``refinement_labels`` are the label columns the model
    covers (set at training time).
    """

    def __init__(self, n_inputs: int, n_labels: int, hidden_sizes: list[int],
                 activation: str = "silu", dropout: float = 0.0, linear_skip: bool = True,
                 input_components: int = 0, ridge_inputs: bool = False,
                 refinement_pixels: int = 0, refinement_labels: list[int] | None = None,
                 refinement_damping: float = 1.0, feature_density_rank: int = 0):
        super().__init__()
        if ridge_inputs and not linear_skip:
            raise ValueError("ridge_inputs needs linear_skip: the MLP reads the skip path")
        refinement_labels = list(refinement_labels or [])
        if refinement_pixels > 0 and not linear_skip:
            raise ValueError("refinement_pixels needs linear_skip: the step starts from the "
                             "skip path")
        layers: list[nn.Module] = []
        width = n_inputs
        self.projection = None
        if input_components > 0:
            # fixed (not trained) map to whitened principal components of the training set
            self.projection = nn.Linear(n_inputs, input_components)
            self.projection.requires_grad_(False)
            width = input_components
        self.ridge_inputs = bool(ridge_inputs)
        if self.ridge_inputs:
            width += n_labels
        self.refinement = None
        if refinement_pixels > 0 and refinement_labels:
            self.refinement = GaussNewtonRefinement(len(refinement_labels), refinement_pixels,
                                                    refinement_damping)
            with torch.no_grad():
                self.refinement.label_index.copy_(torch.tensor(refinement_labels))
            width += len(refinement_labels)
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.density = (FeatureDensity(width, feature_density_rank)
                        if feature_density_rank > 0 and hidden_sizes else None)
        self.head = nn.Linear(width, 2 * n_labels)
        self.skip = nn.Linear(n_inputs, n_labels) if linear_skip else None
        self.n_labels = n_labels
        with torch.no_grad():  # start near "predict the mean, unit variance"
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
            if self.skip is not None:
                self.skip.weight.zero_()
                self.skip.bias.zero_()

    def _require_ivar(self, input_ivar: torch.Tensor | None) -> torch.Tensor:
        if input_ivar is None:
            raise ValueError("this network takes a Gauss-Newton step on the spectrum "
                             "(refinement_pixels > 0): call it as network(inputs, input_ivar)")
        return input_ivar

    def refinement_step(self, inputs: torch.Tensor, input_ivar: torch.Tensor | None,
                        start: torch.Tensor) -> torch.Tensor:
        """(n, n_labels) Gauss-Newton update from ``start`` (0 for labels the model lacks)."""
        delta = self.refinement.step(inputs, self._require_ivar(input_ivar), start)
        return self.refinement.scatter(delta, self.n_labels)

    def mlp_features(self, components: torch.Tensor, skip: torch.Tensor | None,
                     delta: torch.Tensor | None) -> torch.Tensor:
        """What the MLP reads: the inputs or their principal components, then the skip
        path's predictions when ``ridge_inputs``, then the step of the modelled labels."""
        parts = [components]
        if self.ridge_inputs:
            parts.append(skip)
        if self.refinement is not None:
            parts.append(delta[:, self.refinement.label_index])
        return torch.cat(parts, dim=1) if len(parts) > 1 else components

    def mlp(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The MLP's (mean, log_variance) from :meth:`mlp_features`, without the skip path or
        the step."""
        return self._head(self.body(features))

    def _head(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(hidden)
        mean, log_variance = out[:, : self.n_labels], out[:, self.n_labels :]
        return mean, log_variance.clamp(-14.0, 6.0)

    def _trunk(self, inputs: torch.Tensor, input_ivar: torch.Tensor | None,
               with_hessian: bool) -> tuple[torch.Tensor, ...]:
        """(last hidden features, skip, step, hessian) of a batch (None where absent)."""
        skip = self.skip(inputs) if self.skip is not None else None
        delta = hessian = None
        if self.refinement is not None:
            if with_hessian:
                step, hessian = self.refinement.step(inputs, self._require_ivar(input_ivar),
                                                     skip, with_hessian=True)
                delta = self.refinement.scatter(step, self.n_labels)
            else:
                delta = self.refinement_step(inputs, input_ivar, skip)
        components = inputs if self.projection is None else self.projection(inputs)
        return self.body(self.mlp_features(components, skip, delta)), skip, delta, hessian

    def outputs(self, inputs: torch.Tensor, input_ivar: torch.Tensor | None = None,
                with_hessian: bool = False) -> NetworkOutputs:
        """Standardised inputs (n, n_inputs) [and their inverse variance, same shape, input
        units, 0 where masked: needed with a refinement] -> :class:`NetworkOutputs`;
        ``with_hessian`` (needs a refinement): also the refinement step's matrix."""
        hidden, skip, delta, hessian = self._trunk(inputs, input_ivar, with_hessian)
        mean, log_variance = self._head(hidden)
        if skip is not None:
            mean = mean + skip
        if delta is not None:
            mean = mean + delta
        leverage = None if self.density is None else self.density.leverage(hidden)
        return NetworkOutputs(mean, log_variance, hessian, leverage)

    def hidden_features(self, inputs: torch.Tensor,
                        input_ivar: torch.Tensor | None = None) -> torch.Tensor:
        """(n, H) the last hidden layer's features (what ``FeatureDensity`` measures)."""
        return self._trunk(inputs, input_ivar, False)[0]

    def forward(self, inputs: torch.Tensor, input_ivar: torch.Tensor | None = None,
                with_hessian: bool = False):
        """(mean, log_variance), each (n, n_labels), of :meth:`outputs`; ``with_hessian``:
        (mean, log_variance, hessian)."""
        out = self.outputs(inputs, input_ivar, with_hessian)
        return (out.mean, out.log_variance, out.hessian) if with_hessian else out[:2]


def build_network(architecture: dict[str, Any]) -> LabelNetwork:
    """A fresh :class:`LabelNetwork` from an architecture dict (see :func:`architecture_for`)."""
    return LabelNetwork(
        n_inputs=architecture["n_inputs"],
        n_labels=architecture["n_labels"],
        hidden_sizes=list(architecture["hidden_sizes"]),
        activation=architecture["activation"],
        dropout=architecture["dropout"],
        linear_skip=architecture["linear_skip"],
        input_components=architecture.get("input_components", 0),
        ridge_inputs=architecture.get("ridge_inputs", False),
        refinement_pixels=architecture.get("refinement_pixels", 0),
        refinement_labels=architecture.get("refinement_labels", []),
        refinement_damping=architecture.get("refinement_damping", 1.0),
        # bundles made before the feature density have none (0)
        feature_density_rank=architecture.get("feature_density_rank", 0),
    )
