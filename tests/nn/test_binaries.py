"""Composite spectra (nn.binaries): on a toy spectrum model made of absorption lines, a
double-lined composite (a second star at another velocity) scores high and its velocity is
found; a single star, at any S/N, scores low; the templates are blind to what the single-star
model can do itself."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from desi_abundances.nn.binaries import (
    COMPOSITE_COLUMNS,
    VELOCITIES_KMS,
    composite_score,
    composite_templates,
    floored_weight,
    network_templates,
    shifted_pattern,
)
from desi_abundances.nn.fit_quality import arm_matrix, fit_statistics, reduced_chi2
from desi_abundances.nn.refinement import GaussNewtonRefinement
from desi_abundances.physics import SPEED_OF_LIGHT_KMS

WAVELENGTH = np.arange(5000.0, 5600.0, 0.4)  # ~24 km/s per pixel
N_LINES, K, N_MODEL_PIXELS = 60, 2, 800
IQR = np.full(WAVELENGTH.size, 0.05)
THRESHOLD = 10.0  # conf/base/parameters_inference.yml flags.max_composite_score


def line_depths(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centres = rng.uniform(5010.0, 5590.0, N_LINES)
    depth = rng.uniform(0.1, 0.6, N_LINES)
    response = rng.normal(0.0, 0.3, (N_LINES, K))  # d ln depth / d label
    return centres, depth, response


LINES = line_depths(np.random.default_rng(0))


def flux(labels: np.ndarray, dv_kms: float = 0.0) -> np.ndarray:
    """(n, pixels) normalised flux of stars with ``labels`` (n, K), moved by ``dv_kms``."""
    centres, depth, response = LINES
    strength = depth * np.exp(np.atleast_2d(labels) @ response.T)  # (n, lines)
    at = WAVELENGTH / (1.0 + dv_kms / SPEED_OF_LIGHT_KMS)
    profile = np.exp(-0.5 * ((at[:, None] - centres[None]) / 0.8) ** 2)  # sigma ~ 48 km/s
    return 1.0 - strength @ profile.T


MEDIAN = flux(np.zeros(K))[0]


def model_layer() -> GaussNewtonRefinement:
    """The single-star model: a quadratic fit in the labels to the standardised flux."""
    rng = np.random.default_rng(1)
    labels = rng.normal(0.0, 0.5, (400, K))
    inputs = (flux(labels) - MEDIAN) / IQR
    i, j = np.triu_indices(K)
    design = np.column_stack([np.ones(len(labels)), labels, labels[:, i] * labels[:, j]])
    coefficients, *_ = np.linalg.lstsq(design, inputs, rcond=None)
    layer = GaussNewtonRefinement(K, N_MODEL_PIXELS, damping=1e-3)
    layer.set_model(np.arange(K), coefficients, np.zeros(WAVELENGTH.size),
                    np.ones(WAVELENGTH.size))
    return layer


def observe(clean: np.ndarray, snr: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised inputs and their inverse variance of noisy spectra at S/N ``snr``."""
    rng = np.random.default_rng(seed)
    sigma = 1.0 / snr
    noisy = clean + sigma * rng.standard_normal(clean.shape)
    inputs = ((noisy - MEDIAN) / IQR).astype(np.float32)
    ivar = np.full(clean.shape, (IQR / sigma) ** 2, np.float32)
    return torch.from_numpy(inputs), torch.from_numpy(ivar)


def scores(layer, inputs, ivar) -> np.ndarray:
    """(n, 2) composite score and velocity at the single-star fit's labels."""
    templates = composite_templates(WAVELENGTH, MEDIAN, IQR, layer.pixel_index.numpy(),
                                    layer.jacobian.numpy())
    with torch.no_grad():
        labels = layer.step(inputs, ivar, torch.zeros(inputs.shape[0], K))
        for _ in range(3):  # converge: the test is about the residual, not the labels
            labels = labels + layer.step(inputs, ivar, labels)
    arms = torch.from_numpy(arm_matrix(WAVELENGTH[layer.pixel_index.numpy()]))
    return fit_statistics(layer, inputs, ivar, labels, arms, templates)[1].numpy()


def composites(n: int, flux_ratio: float, dv_kms: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    primary = flux(rng.normal(0.0, 0.5, (n, K)))
    secondary = flux(rng.normal(0.0, 0.5, (n, K)), dv_kms)
    return (primary + flux_ratio * secondary) / (1.0 + flux_ratio)


@pytest.mark.parametrize("snr", [20.0, 100.0])
def test_single_stars_score_low(snr):
    layer = model_layer()
    clean = flux(np.random.default_rng(2).normal(0.0, 0.5, (200, K)))
    out = scores(layer, *observe(clean, snr, seed=3))
    assert out.shape == (200, len(COMPOSITE_COLUMNS))
    assert np.mean(out[:, 0] > THRESHOLD) < 0.03


@pytest.mark.parametrize("dv", [-200.0, 150.0, 320.0])
def test_composites_score_high_and_their_velocity_is_found(dv):
    layer = model_layer()
    out = scores(layer, *observe(composites(100, 0.5, dv, seed=4), 30.0, seed=5))
    assert np.mean(out[:, 0] > THRESHOLD) > 0.95
    assert np.median(np.abs(out[:, 1] - dv)) <= 40.0


def test_a_composite_scores_more_the_brighter_its_secondary():
    layer = model_layer()
    median = [np.median(scores(layer, *observe(composites(50, q, 200.0, 6), 30.0, 7))[:, 0])
              for q in (0.0, 0.02, 0.1, 0.8)]
    assert np.all(np.diff(median) > 0)
    assert median[0] < 3.0 < THRESHOLD < median[2]


def test_templates_are_blind_to_what_the_single_star_model_can_do():
    layer = model_layer()
    pixels = layer.pixel_index.numpy()
    templates = composite_templates(WAVELENGTH, MEDIAN, IQR, pixels, layer.jacobian.numpy())
    assert templates.templates.shape == (N_MODEL_PIXELS, VELOCITIES_KMS.size)
    t = templates.templates.numpy().astype(np.float64)
    for own in (layer.jacobian.numpy(), (MEDIAN[pixels] - 1.0) / IQR[pixels],
                shifted_pattern(WAVELENGTH, MEDIAN, WAVELENGTH[pixels], 30.0)):
        own = np.asarray(own, np.float64).reshape(N_MODEL_PIXELS, -1)
        assert np.abs(own.T @ t).max() < 1e-4 * np.abs(own).sum() * np.abs(t).max()


def test_no_good_pixel_gives_nan_and_the_chi_square_is_unchanged():
    layer = model_layer()
    inputs, ivar = observe(composites(3, 0.5, 200.0, seed=8), 30.0, seed=9)
    ivar[1] = 0.0
    out = scores(layer, inputs, ivar)
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
    labels = torch.zeros(3, K)
    arms = torch.from_numpy(arm_matrix(WAVELENGTH[layer.pixel_index.numpy()]))
    templates = composite_templates(WAVELENGTH, MEDIAN, IQR, layer.pixel_index.numpy(),
                                    layer.jacobian.numpy())
    before = inputs.clone()
    chi2, _ = fit_statistics(layer, inputs, ivar, labels, arms, templates)
    torch.testing.assert_close(chi2, reduced_chi2(layer, inputs, ivar, labels, arms),
                               equal_nan=True)
    assert torch.equal(inputs, before)


def test_emission_at_another_velocity_is_not_a_second_star():
    layer = model_layer()
    inputs, ivar = observe(flux(np.zeros((20, K))), 50.0, seed=10)
    pixels = layer.pixel_index
    templates = composite_templates(WAVELENGTH, MEDIAN, IQR, pixels.numpy(),
                                    layer.jacobian.numpy())
    residual = -5.0 * templates.templates[:, 3].expand(20, -1).clone()  # negative amplitude
    weight = floored_weight(ivar[:, pixels])
    rchi2_floor = (residual**2 * weight).sum(dim=1) / (ivar[:, pixels] > 0).sum(dim=1)
    score, _ = composite_score(residual, weight, rchi2_floor, templates)
    assert float(score.max()) < THRESHOLD


def test_a_layers_templates_are_made_once():
    layer = model_layer()
    first = network_templates(layer, WAVELENGTH, MEDIAN, IQR)
    assert network_templates(layer, WAVELENGTH, MEDIAN, IQR) is first
    assert network_templates(model_layer(), WAVELENGTH, MEDIAN, IQR) is not first


def test_a_label_error_is_not_a_second_star():
    """The network's labels are not the best fit: what they leave along the model's own
    directions (the Jacobian) must not pass for a second star."""
    layer = model_layer()
    rng = np.random.default_rng(11)
    truth = rng.normal(0.0, 0.5, (200, K))
    inputs, ivar = observe(flux(truth), 50.0, seed=12)
    off = torch.from_numpy((truth + rng.normal(0.0, 0.3, truth.shape)).astype(np.float32))
    arms = torch.from_numpy(arm_matrix(WAVELENGTH[layer.pixel_index.numpy()]))
    templates = composite_templates(WAVELENGTH, MEDIAN, IQR, layer.pixel_index.numpy(),
                                    layer.jacobian.numpy())
    chi2, out = fit_statistics(layer, inputs, ivar, off, arms, templates)
    assert np.median(chi2[:, 0].numpy()) > 2.0  # the labels are off: a poor fit
    assert np.mean(out[:, 0].numpy() > THRESHOLD) < 0.03
