"""The Payne-style network (Ting et al. 2019, ApJ 879, 69): labels -> normalised flux.

A small fully connected network maps scaled labels to every pixel at once. Labels are
scaled to [-0.5, 0.5] with the training set's minimum and maximum (as in The Payne), so the
network sees all labels on the same footing whatever their units (K, dex, km/s).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class LabelScaler(nn.Module):
    """x_scaled = (x - min) / (max - min) - 0.5, with fixed buffers (saved with the weights)."""

    def __init__(self, label_min: torch.Tensor, label_max: torch.Tensor) -> None:
        super().__init__()
        label_min = torch.as_tensor(label_min, dtype=torch.float32)
        label_max = torch.as_tensor(label_max, dtype=torch.float32)
        if label_min.shape != label_max.shape or label_min.ndim != 1:
            raise ValueError("label_min and label_max must be 1-D and of equal length")
        span = label_max - label_min
        span = torch.where(span > 0, span, torch.ones_like(span))  # constant label: no scaling
        self.register_buffer("label_min", label_min)
        self.register_buffer("label_span", span)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return (labels - self.label_min) / self.label_span - 0.5


class PayneNetwork(nn.Module):
    """Labels in physical units (n, n_labels) -> normalised flux (n, n_pixels).

    Args:
        label_min, label_max: (n_labels,) training range of each label (physical units).
        n_pixels: number of output pixels.
        hidden: widths of the hidden layers (SiLU activations).
        mean_flux: optional (n_pixels,) initial output bias (the training mean spectrum).
    """

    def __init__(self, label_min: torch.Tensor, label_max: torch.Tensor, n_pixels: int,
                 hidden: Sequence[int] = (64, 64), mean_flux: torch.Tensor | None = None) -> None:
        super().__init__()
        self.scaler = LabelScaler(label_min, label_max)
        n_labels = self.scaler.label_min.numel()
        layers: list[nn.Module] = []
        width = n_labels
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.SiLU()]
            width = int(h)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, int(n_pixels))
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            if mean_flux is not None:
                self.head.bias.copy_(torch.as_tensor(mean_flux, dtype=torch.float32))
            else:
                self.head.bias.fill_(1.0)

    @property
    def n_labels(self) -> int:
        return self.scaler.label_min.numel()

    @property
    def n_pixels(self) -> int:
        return self.head.out_features

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.scaler(labels)))
