"""The training loop: AdamW, warm-up + cosine learning rate, input-noise augmentation, early
stopping on the validation loss, seeded and deterministic."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from desi_abundances.defaults import with_defaults
from desi_abundances.nn.linear import CentredSVD, fit_ridge
from desi_abundances.nn.loss import label_nll
from desi_abundances.nn.network import LabelNetwork, build_network
from desi_abundances.nn.refinement import GaussNewtonRefinement

DEFAULT_OPTIMISATION: dict[str, Any] = {
    "seed": 42,
    "max_epochs": 200,
    "batch_size": 128,
    "learning_rate": 1.0e-3,
    "weight_decay": 1.0e-4,
    "warmup_epochs": 3,
    "patience": 30,
    "min_delta": 1.0e-4,
    "nll_beta": 0.5,
    "noise_augmentation": 2.0,
    "device": "auto",
    "num_threads": 1,
    "progress_bar": True,
    "early_stopping": "mse",
    "ridge_init": True,
    "ridge_alphas": [1.0e2, 1.0e3, 3.0e3, 1.0e4, 1.0e5],
    "skip_learning_rate_factor": 0.0,
}
"""Defaults of ``params:training.optimisation``.

noise_augmentation: each training batch adds Gaussian noise of u * (the spectrum's own
    pixel noise), u ~ U(0, noise_augmentation) per spectrum: the network sees the same star at
    lower S/N (down to 1/sqrt(1 + a^2) of it), which regularises and prepares it for faint
    stars.
device: "auto" (CUDA when available, else CPU), "cpu" or "cuda".
ridge_init: initialise the linear skip path with ridge regression (penalty per label from
    ``ridge_alphas``, chosen on the validation split); the MLP then fits the residuals.
skip_learning_rate_factor: learning rate of the skip path relative to the rest; 0 freezes it
    at the ridge solution (Adam's fixed step size would otherwise scramble its small weights).
early_stopping: the validation figure that early stopping (and the choice of the weights
    kept) watches: "loss" (the training loss on the validation split) or "mse" (mean squared
    standardised residual of the predicted means).
"""


@dataclass
class TrainingArrays:
    """Standardised arrays of one split (float32): inputs (n, n_pixels), input_noise (n,
    n_pixels) = pixel sigma in input units (0 where masked), labels and label_errors
    (n, n_labels), NaN where missing."""

    inputs: np.ndarray
    input_noise: np.ndarray
    labels: np.ndarray
    label_errors: np.ndarray

    def __len__(self) -> int:
        return self.inputs.shape[0]


@dataclass
class TrainingResult:
    network: LabelNetwork
    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    validation_mse: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    epochs_run: int = 0


def optimisation_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by ``settings``; unknown keys raise ValueError."""
    return with_defaults(DEFAULT_OPTIMISATION, settings, "optimisation")


def select_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and ask for deterministic algorithms."""
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def _learning_rate_factor(epoch: int, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` epochs, then cosine decay to 1 % at ``total``."""
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    progress = (epoch - warmup) / max(total - warmup, 1)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _to_tensors(arrays: TrainingArrays, device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device)
                 for a in (arrays.inputs, arrays.input_noise, arrays.labels, arrays.label_errors))


def inverse_variance_from_noise(input_noise: torch.Tensor) -> torch.Tensor:
    """Inverse variance per pixel in input units from ``TrainingArrays.input_noise`` (sigma,
    0 where masked -> 0): what ``nn.predict.input_inverse_variance`` gives at prediction."""
    safe = torch.where(input_noise > 0, input_noise, torch.ones_like(input_noise))
    return torch.where(input_noise > 0, 1.0 / safe**2, torch.zeros_like(input_noise))


def evaluate_loss(network: LabelNetwork, arrays: TrainingArrays, device: torch.device,
                  beta: float, batch_size: int = 2048) -> tuple[float, float]:
    """(mean loss, mean squared standardised residual of the means) over a split, without
    augmentation, in eval mode, averaged over the valid (star, label) entries."""
    network.eval()
    inputs, noise, labels, errors = _to_tensors(arrays, device)
    total, squared, count = 0.0, 0.0, 0
    with torch.no_grad():
        for start in range(0, len(arrays), batch_size):
            rows = slice(start, start + batch_size)
            input_ivar = (inverse_variance_from_noise(noise[rows])
                          if getattr(network, "refinement", None) is not None else None)
            mean, log_variance = network(inputs[rows], input_ivar)
            valid = torch.isfinite(labels[rows]) & torch.isfinite(errors[rows])
            n_valid = int(valid.sum())
            total += float(label_nll(mean, log_variance, labels[rows], errors[rows], beta)) * n_valid
            residual = torch.where(valid, labels[rows] - mean, torch.zeros_like(mean))
            squared += float((residual**2).sum())
            count += n_valid
    return total / max(count, 1), squared / max(count, 1)


@torch.no_grad()
def fit_feature_density(network: LabelNetwork, arrays: TrainingArrays,
                        batch_size: int = 2048) -> None:
    """Set ``network.density`` (``nn.feature_density``) from the last hidden features of the
    training stars ``arrays`` (eval mode, no augmentation); nothing without a density layer."""
    if getattr(network, "density", None) is None:
        return
    network.eval()
    device = next(network.parameters()).device
    inputs, noise = _to_tensors(arrays, device)[:2]
    with_ivar = getattr(network, "refinement", None) is not None
    features = [
        network.hidden_features(inputs[rows], inverse_variance_from_noise(noise[rows])
                                if with_ivar else None)
        for rows in (slice(s, s + batch_size) for s in range(0, len(arrays), batch_size))
    ]
    network.density.fit(torch.cat(features))


def concatenate_arrays(first: TrainingArrays, second: TrainingArrays) -> TrainingArrays:
    """Rows of ``first`` then ``second``."""
    return TrainingArrays(*(np.concatenate([a, b]) for a, b in (
        (first.inputs, second.inputs), (first.input_noise, second.input_noise),
        (first.labels, second.labels), (first.label_errors, second.label_errors))))


def train_network(architecture: dict[str, Any], train: TrainingArrays,
                  validation: TrainingArrays, settings: dict[str, Any],
                  extra: TrainingArrays | None = None,
                  spectrum_model: Any = None) -> TrainingResult:
    """Train a :class:`LabelNetwork`; returns the weights of the best validation epoch.

    ``extra``: more training rows (e.g. ``nn.synthetic`` simulated spectra) that train the
    MLP but do not enter the principal components or the ridge skip path, which are fitted on
    ``train`` (the real spectra) alone.
    ``spectrum_model``: the ``nn.spectrum_model.QuadraticSpectrumModel`` of the training split
    that a network with a refinement step (``refinement_pixels`` > 0) needs.

    Deterministic for a given seed, device and thread count: the weights are initialised and
    the batches shuffled and augmented from generators seeded by ``settings["seed"]``.
    """
    settings = optimisation_settings(settings)
    if settings["num_threads"]:
        torch.set_num_threads(int(settings["num_threads"]))
    seed_everything(int(settings["seed"]))
    device = select_device(settings["device"])
    network = build_network(architecture)
    if network.refinement is not None:
        if spectrum_model is None:
            raise ValueError("refinement_pixels > 0 needs the spectrum_model of the training "
                             "split (nn.spectrum_model.fit_quadratic_model)")
        ivar = inverse_variance_from_noise(
            torch.from_numpy(train.input_noise.astype(np.float64))).numpy()
        median_weight = np.median(GaussNewtonRefinement.weight(
            ivar, spectrum_model.intrinsic_variance), 0)
        network.refinement.set_model(spectrum_model.label_index, spectrum_model.coefficients,
                                     spectrum_model.intrinsic_variance, median_weight)
    needs_svd = network.projection is not None or (settings["ridge_init"]
                                                   and network.skip is not None)
    svd = CentredSVD.of(train.inputs) if needs_svd else None
    if network.projection is not None:
        weight, bias = svd.whitening(network.projection.out_features)
        if weight.shape[0] < network.projection.out_features:
            raise ValueError(f"input_components {network.projection.out_features} exceeds the "
                             f"rank {weight.shape[0]} of the training inputs")
        with torch.no_grad():
            network.projection.weight.copy_(torch.from_numpy(weight))
            network.projection.bias.copy_(torch.from_numpy(bias))
    skip_train = None  # out-of-sample skip-path predictions for the training rows
    if settings["ridge_init"] and network.skip is not None:
        weight, bias, _, leave_one_out = fit_ridge(
            train.inputs, train.labels, validation.inputs, validation.labels,
            settings["ridge_alphas"], svd=svd)
        with torch.no_grad():
            network.skip.weight.copy_(torch.from_numpy(weight))
            network.skip.bias.copy_(torch.from_numpy(bias))
        skip_train = torch.from_numpy(leave_one_out)
    if extra is not None and len(extra):
        if skip_train is not None:
            with torch.no_grad():
                extra_skip = network.skip(torch.from_numpy(np.ascontiguousarray(
                    extra.inputs, np.float32)))
            skip_train = torch.cat([skip_train.to(extra_skip.dtype), extra_skip])
        train = concatenate_arrays(train, extra)
    network = network.to(device)
    skip_factor = float(settings["skip_learning_rate_factor"])
    skip_parameters = list(network.skip.parameters()) if network.skip is not None else []
    skip_ids = {id(p) for p in skip_parameters}
    groups = [{"params": [p for p in network.parameters()
                          if id(p) not in skip_ids and p.requires_grad]}]
    if skip_parameters and skip_factor > 0:
        groups.append({"params": skip_parameters,
                       "lr": settings["learning_rate"] * skip_factor})
    else:
        for parameter in skip_parameters:
            parameter.requires_grad_(False)
    optimiser = torch.optim.AdamW(groups, lr=settings["learning_rate"],
                                  weight_decay=settings["weight_decay"])
    max_epochs, warmup = int(settings["max_epochs"]), int(settings["warmup_epochs"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda epoch: _learning_rate_factor(epoch, warmup, max_epochs))
    generator = torch.Generator(device="cpu").manual_seed(int(settings["seed"]))
    noise_generator = torch.Generator(device=device).manual_seed(int(settings["seed"]) + 1)
    inputs, noise, labels, errors = _to_tensors(train, device)
    frozen_skip = network.skip is not None and skip_factor <= 0
    skip_noise = None
    if frozen_skip:
        # The skip path is fixed: its training-row outputs are precomputed, as leave-one-out
        # ridge predictions when it is the ridge (the MLP then learns from out-of-sample
        # residuals, not from the ridge's optimistic in-sample ones); augmentation noise
        # reaches it as an extra Gaussian of the propagated width per label.
        with torch.no_grad():
            if skip_train is None:
                skip_train = network.skip(inputs).cpu()
            skip_noise = torch.sqrt((noise**2) @ (network.skip.weight.detach() ** 2).T)
        skip_train = skip_train.to(device)
    delta_train = delta_noise = modelled = None
    if network.refinement is not None:
        if not frozen_skip:
            raise ValueError("refinement_pixels > 0 needs a frozen skip path "
                             "(skip_learning_rate_factor 0)")
        # the step is fixed too: precomputed from the (out-of-sample) skip predictions, with
        # the width that augmentation noise gives it
        with torch.no_grad():
            deltas, variances = [], []
            for start in range(0, len(train), 2048):
                rows = slice(start, start + 2048)
                ivar = inverse_variance_from_noise(noise[rows])
                deltas.append(network.refinement_step(inputs[rows], ivar, skip_train[rows]))
                variances.append(network.refinement.scatter(
                    network.refinement.step_variance(ivar), network.n_labels))
            delta_train = torch.cat(deltas)
            delta_noise = torch.sqrt(torch.cat(variances))
            modelled = network.refinement.scatter(torch.ones(1, network.refinement.n_model_labels,
                                                             device=device), network.n_labels)
    if network.projection is not None:
        # the projection is fixed: train on the (n, k) components, with the augmentation
        # noise mapped into component space (per component, ignoring the small correlations
        # between components that pixel noise induces)
        with torch.no_grad():
            inputs = network.projection(inputs)
            noise = torch.sqrt((noise**2) @ (network.projection.weight.detach() ** 2).T)

    def forward(batch: torch.Tensor, rows: torch.Tensor, scale: torch.Tensor | None):
        if not frozen_skip:
            if network.projection is None:
                return network(batch)
            if network.skip is None:  # batch holds the components already
                return network.mlp(batch)
            raise ValueError("a trained skip path (skip_learning_rate_factor > 0) needs "
                             "input_components 0")
        skip_mean = skip_train[rows]
        delta = None if delta_train is None else delta_train[rows]
        if scale is not None:
            shift = scale * skip_noise[rows] * torch.randn(
                skip_mean.shape, generator=noise_generator, device=device)
            skip_mean = skip_mean + shift
            if delta is not None:  # the step undoes the start's error and adds its own noise
                delta = delta - shift * modelled + scale * delta_noise[rows] * torch.randn(
                    delta.shape, generator=noise_generator, device=device)
        # the MLP reads the same (out-of-sample) skip predictions and step
        mean, log_variance = network.mlp(network.mlp_features(batch, skip_mean, delta))
        mean = mean + skip_mean
        return (mean if delta is None else mean + delta), log_variance
    beta, batch_size = float(settings["nll_beta"]), int(settings["batch_size"])
    augmentation = float(settings["noise_augmentation"])

    result = TrainingResult(network=network)
    best_loss, best_state, waited = math.inf, copy.deepcopy(network.state_dict()), 0
    started = time.perf_counter()
    bar = tqdm(range(max_epochs), desc="training", unit="epoch",
               disable=not settings["progress_bar"])
    for epoch in bar:
        network.train()
        order = torch.randperm(len(train), generator=generator).to(device)
        epoch_loss, n_batches = 0.0, 0
        for start in range(0, len(train), batch_size):
            rows = order[start:start + batch_size]
            batch, scale = inputs[rows], None
            if augmentation > 0:
                scale = torch.rand((rows.numel(), 1), generator=noise_generator,
                                   device=device) * augmentation
                batch = batch + scale * noise[rows] * torch.randn(
                    batch.shape, generator=noise_generator, device=device)
            mean, log_variance = forward(batch, rows, scale)
            loss = label_nll(mean, log_variance, labels[rows], errors[rows], beta)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            epoch_loss += float(loss.detach())
            n_batches += 1
        scheduler.step()
        train_loss = epoch_loss / max(n_batches, 1)
        validation_loss, validation_mse = evaluate_loss(network, validation, device, beta)
        result.train_loss.append(train_loss)
        result.validation_loss.append(validation_loss)
        result.validation_mse.append(validation_mse)
        bar.set_postfix(train=f"{train_loss:.4f}", validation=f"{validation_loss:.4f}",
                        validation_mse=f"{validation_mse:.4f}")
        monitored = validation_mse if settings["early_stopping"] == "mse" else validation_loss
        if monitored < best_loss - settings["min_delta"]:
            best_loss, waited, result.best_epoch = monitored, 0, epoch
            best_state = copy.deepcopy(network.state_dict())
        else:
            waited += 1
            if waited >= int(settings["patience"]):
                break
    bar.close()
    network.load_state_dict(best_state)
    result.network = network.cpu().eval()
    result.seconds = time.perf_counter() - started
    result.epochs_run = len(result.train_loss)
    return result
