"""The epistemic part of a label's error: how far a star's learned features lie from the
training stars', as the leverage of a Bayesian linear last layer.

The network's last hidden layer maps a spectrum to H features phi; the head is linear in phi.
Treat the head as a Bayesian linear regression on phi fitted to the N training stars (the
"neural linear" model: Snoek et al. 2015; Kristiadi et al. 2020 show that this alone fixes
much of a ReLU network's over-confidence far from its data). Its predictive variance is the
noise variance times (1 + h), with the leverage

    h(x) = (1 + d^2(x)) / N,   d^2 = (phi - mu)^T C^-1 (phi - mu)

(mu, C: mean and covariance of the training stars' features; for a training-like star
d^2 ~ H, so h ~ H / N, about 0.1 for H = 512, N ~ 4,000). Far from the
training set d^2 grows and with it the error: on the mock survey the robust z std of the
calibrated errors rises from 0.9 to 1.7 with d^2 (issue 15), most of all for the dwarfs the
APOGEE-like training set lacks. h has the Bayesian model's own scale; ``nn.calibration``
fits one factor m per label on top (err^2 x (1 + m^2 h)) on the validation split.

C is kept as its ``rank`` leading eigenvectors plus one mean variance for the remaining
directions (the features are far from full rank: the smallest eigenvalues are ~1e-5 of the
largest and would turn noise into huge distances); cost per star: one (H x rank) product.
"""
from __future__ import annotations

import torch
from torch import nn

DEFAULT_RANK = 32
"""Leading eigenvectors of the training features' covariance kept exactly."""


class FeatureDensity(nn.Module):
    """A fixed (not trained) layer: features (n, H) -> leverage h (n,).

    Buffers (set by :meth:`fit`; until then ``n_train`` is 0 and the leverage NaN):
        mean (H,), basis (H, rank): leading eigenvectors, inverse_variance (rank,): their
        inverse eigenvalues, remainder_inverse_variance (): the inverse mean eigenvalue of
        the other directions, n_train (): the number of training stars.
    """

    def __init__(self, n_features: int, rank: int = DEFAULT_RANK):
        super().__init__()
        rank = int(min(rank, n_features))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("basis", torch.zeros(n_features, rank))
        self.register_buffer("inverse_variance", torch.zeros(rank))
        self.register_buffer("remainder_inverse_variance", torch.zeros(()))
        self.register_buffer("n_train", torch.zeros(()))

    @torch.no_grad()
    def fit(self, features: torch.Tensor) -> None:
        """Set the buffers from the training stars' features (n, H), n > 1."""
        features = features.detach().to(torch.float64)
        n, n_features = features.shape
        if n < 2:
            raise ValueError(f"FeatureDensity.fit needs at least 2 training stars, got {n}")
        mean = features.mean(0)
        centred = features - mean
        eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred / n)
        order = torch.argsort(eigenvalues, descending=True)
        eigenvalues, eigenvectors = eigenvalues[order].clamp(min=0.0), eigenvectors[:, order]
        rank = self.basis.shape[1]
        floor = 1e-12 * max(float(eigenvalues[0]), 1e-30)
        # the directions beyond ``rank`` share their mean variance (none left: weight 0)
        remainder_inverse = (1.0 / eigenvalues[rank:].mean().clamp(min=floor)
                             if rank < n_features else torch.zeros((), dtype=torch.float64))
        self.mean.copy_(mean)
        self.basis.copy_(eigenvectors[:, :rank])
        self.inverse_variance.copy_(1.0 / eigenvalues[:rank].clamp(min=floor))
        self.remainder_inverse_variance.copy_(remainder_inverse)
        self.n_train.fill_(float(n))

    def squared_distance(self, features: torch.Tensor) -> torch.Tensor:
        """(n,) Mahalanobis distance squared d^2 of ``features`` to the training features."""
        centred = features - self.mean
        projected = centred @ self.basis
        remainder = (centred.square().sum(1) - projected.square().sum(1)).clamp(min=0.0)
        return projected.square() @ self.inverse_variance + remainder * self.remainder_inverse_variance

    def leverage(self, features: torch.Tensor) -> torch.Tensor:
        """(n,) h = (1 + d^2) / N; NaN before :meth:`fit`."""
        if float(self.n_train) <= 0:
            return torch.full((features.shape[0],), float("nan"), dtype=features.dtype)
        return (1.0 + self.squared_distance(features)) / self.n_train
