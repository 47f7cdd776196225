"""The label network: an MLP on standardised pixels with a linear skip path, predicting a mean
and a log-variance for every label (standardised units)."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

ACTIVATIONS = {"silu": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh,
               "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}

DEFAULT_ARCHITECTURE: dict[str, Any] = {
    "hidden_sizes": [512, 512, 512, 512, 512],
    "activation": "silu",
    "dropout": 0.2,
    "linear_skip": True,
    "input_components": 64,
    "ridge_inputs": True,
    "noise_features": False,
}
"""Defaults of the architecture (``params:training.architecture`` overrides them)."""


def architecture_for(n_inputs: int, n_labels: int, settings: dict[str, Any] | None) -> dict:
    """Complete architecture dict (JSON-able) for ``n_inputs`` pixels and ``n_labels`` labels.

    Raises:
        ValueError: on an unknown key or activation.
    """
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_ARCHITECTURE))
    if unknown:
        raise ValueError(f"unknown architecture setting(s) {unknown}; known: "
                         f"{sorted(DEFAULT_ARCHITECTURE)}")
    full = {**DEFAULT_ARCHITECTURE, **settings}
    if full["ridge_inputs"] and not full["linear_skip"]:
        raise ValueError("ridge_inputs needs linear_skip (the MLP reads the skip path's "
                         "predictions): set ridge_inputs: false as well")
    if full["noise_features"] and int(full["input_components"]) <= 0:
        raise ValueError("noise_features needs input_components > 0 (the noise is summarised "
                         "per principal component)")
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
        "noise_features": bool(full["noise_features"]),
    }


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

    With ``noise_features`` (needs ``input_components``) the MLP also reads how noisy each of
    its principal components is for this star: log sigma_i with sigma_i^2 = sum_p W_ip^2
    v_p, W the projection and v_p the pixel's noise variance in input units (masked pixels:
    the training spread). A spectrum at S/N 20 and one at S/N 150 with the same components
    are different evidence; without this the MLP has to guess which it sees, and shrinks
    both alike. The forward pass then takes ``noise_variance`` beside the inputs.
    """

    def __init__(self, n_inputs: int, n_labels: int, hidden_sizes: list[int],
                 activation: str = "silu", dropout: float = 0.0, linear_skip: bool = True,
                 input_components: int = 0, ridge_inputs: bool = False,
                 noise_features: bool = False):
        super().__init__()
        if ridge_inputs and not linear_skip:
            raise ValueError("ridge_inputs needs linear_skip: the MLP reads the skip path")
        if noise_features and input_components <= 0:
            raise ValueError("noise_features needs input_components > 0")
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
        self.noise_features = bool(noise_features)
        if self.noise_features:
            width += input_components
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 2 * n_labels)
        self.skip = nn.Linear(n_inputs, n_labels) if linear_skip else None
        self.n_labels = n_labels
        with torch.no_grad():  # start near "predict the mean, unit variance"
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
            if self.skip is not None:
                self.skip.weight.zero_()
                self.skip.bias.zero_()

    def component_noise_variance(self, noise_variance: torch.Tensor) -> torch.Tensor:
        """(n, n_inputs) pixel noise variances (input units) -> (n, k) variances of the
        principal components (pixel noise taken as independent)."""
        return noise_variance @ (self.projection.weight.detach() ** 2).T

    @staticmethod
    def noise_feature(component_variance: torch.Tensor) -> torch.Tensor:
        """What the MLP reads of the noise: log sigma per component (floored at 1e-3)."""
        return 0.5 * torch.log(component_variance + 1e-6)

    def features(self, inputs: torch.Tensor,
                 noise_variance: torch.Tensor | None = None) -> torch.Tensor:
        """What the MLP reads: the inputs or their principal components, followed by the
        skip path's predictions when ``ridge_inputs`` and the components' log noise when
        ``noise_features``."""
        features = inputs if self.projection is None else self.projection(inputs)
        parts = [features]
        if self.ridge_inputs:
            parts.append(self.skip(inputs))
        if self.noise_features:
            parts.append(self.noise_feature(self.component_noise_variance(
                self._require_noise(noise_variance))))
        return torch.cat(parts, dim=1) if len(parts) > 1 else features

    def _require_noise(self, noise_variance: torch.Tensor | None) -> torch.Tensor:
        if noise_variance is None:
            raise ValueError("this network reads the pixel noise (noise_features): call it as "
                             "network(inputs, noise_variance)")
        return noise_variance

    def mlp(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The MLP's (mean, log_variance) from :meth:`features`, without the skip path."""
        out = self.head(self.body(features))
        mean, log_variance = out[:, : self.n_labels], out[:, self.n_labels :]
        return mean, log_variance.clamp(-14.0, 6.0)

    def forward(self, inputs: torch.Tensor, noise_variance: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised inputs (n, n_inputs) [and their noise variances, same shape, input
        units; needed with ``noise_features``] -> (mean, log_variance), each (n, n_labels)."""
        skip = self.skip(inputs) if self.skip is not None else None
        features = inputs if self.projection is None else self.projection(inputs)
        parts = [features]
        if self.ridge_inputs:
            parts.append(skip)
        if self.noise_features:
            parts.append(self.noise_feature(self.component_noise_variance(
                self._require_noise(noise_variance))))
        if len(parts) > 1:
            features = torch.cat(parts, dim=1)
        mean, log_variance = self.mlp(features)
        if skip is not None:
            mean = mean + skip
        return mean, log_variance


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
        noise_features=architecture.get("noise_features", False),
    )
