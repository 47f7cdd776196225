"""Fit quality per star (nn.fit_quality): the reduced chi-square of the spectrum model at the
predicted labels is about 1 for a star the model describes, and large for injected cases that
are not one normal star: a wrong velocity (the spectrum shifted), a double-lined composite of
two stars, a spectrum of another kind."""
from __future__ import annotations

import numpy as np
import torch

from desi_abundances.maths.polynomial import design_matrix
from desi_abundances.nn.fit_quality import arm_boundaries, arm_matrix, fisher_variance, reduced_chi2
from desi_abundances.nn.refinement import GaussNewtonRefinement

N_PIXELS, K = 300, 3
WAVELENGTH = np.linspace(3600.0, 9800.0, N_PIXELS)


def layer(seed: int = 0) -> GaussNewtonRefinement:
    """A refinement layer holding a random quadratic model with narrow 'lines'."""
    rng = np.random.default_rng(seed)
    n_terms = 1 + K + K * (K + 1) // 2
    coefficients = rng.standard_normal((n_terms, N_PIXELS)) * 0.5
    refinement = GaussNewtonRefinement(K, N_PIXELS)
    refinement.set_model(np.arange(K), coefficients, np.full(N_PIXELS, 1e-4), np.ones(N_PIXELS))
    return refinement


def spectra(refinement, labels: np.ndarray, sigma: float, seed: int = 1):
    rng = np.random.default_rng(seed)
    clean = design_matrix(labels, order=2) @ refinement.coefficients.numpy().astype(np.float64)
    flux = clean + sigma * rng.standard_normal(clean.shape)
    return (torch.from_numpy(flux.astype(np.float32)),
            torch.full(flux.shape, 1.0 / sigma**2, dtype=torch.float32))


def chi2(refinement, inputs, ivar, labels) -> np.ndarray:
    arms = torch.from_numpy(arm_matrix(WAVELENGTH[refinement.pixel_index.numpy()]))
    return reduced_chi2(refinement, inputs, ivar, torch.from_numpy(labels.astype(np.float32)),
                        arms).numpy()


def test_arm_matrix_splits_at_the_overlaps():
    b_r, r_z = arm_boundaries()
    matrix = arm_matrix(np.array([4000.0, b_r - 1, b_r + 1, r_z + 1]))
    assert matrix[:, 0].tolist() == [1, 1, 1, 1]
    assert matrix[:, 1:].argmax(axis=1).tolist() == [0, 0, 1, 2]


def test_a_star_the_model_describes_scores_about_one_in_every_arm():
    refinement = layer()
    labels = np.random.default_rng(2).normal(0, 0.5, (200, K))
    inputs, ivar = spectra(refinement, labels, sigma=0.05)
    out = chi2(refinement, inputs, ivar, labels)
    assert out.shape == (200, 5)
    assert np.all(np.abs(np.median(out[:, :4], axis=0) - 1.0) < 0.1)
    # the floored column weighs each pixel less (a 0.5 floor against a 0.01 scatter)
    assert np.all(out[:, 4] < 0.1 * out[:, 0])


def test_the_model_error_floor_keeps_a_galaxy_and_forgives_model_errors():
    refinement = layer()
    labels = np.random.default_rng(5).normal(0, 0.5, (100, K))
    inputs, ivar = spectra(refinement, labels, sigma=0.01)  # bright: S/N ~ 100
    model_error = torch.from_numpy(np.random.default_rng(6).normal(0, 0.1, inputs.shape)
                                   .astype(np.float32))  # 10x the noise, well below the floor
    alien = torch.from_numpy(np.random.default_rng(7).normal(0, 2.0, inputs.shape)
                             .astype(np.float32))
    imperfect = chi2(refinement, inputs + model_error, ivar, labels)
    other = chi2(refinement, alien, ivar, labels)
    assert np.median(imperfect[:, 0]) > 50 and np.median(imperfect[:, 4]) < 2.0
    assert np.median(other[:, 4]) > 10


def test_injected_cases_score_high():
    refinement = layer()
    rng = np.random.default_rng(3)
    labels = rng.normal(0, 0.5, (50, K))
    inputs, ivar = spectra(refinement, labels, sigma=0.05)
    normal = chi2(refinement, inputs, ivar, labels)[:, 0]
    # wrong velocity: the spectrum moved by a few pixels against the model
    shifted = torch.roll(inputs, 3, dims=1)
    # composite: a second star's spectrum added at flux ratio 0.5 (renormalised)
    other, _ = spectra(refinement, rng.normal(0, 0.5, (50, K)), sigma=0.05, seed=4)
    binary = (inputs + 0.5 * torch.roll(other, 2, dims=1)) / 1.5
    # another kind of spectrum: nothing like the model
    alien = torch.from_numpy(rng.normal(0, 1, inputs.shape).astype(np.float32))
    for injected in (shifted, binary, alien):
        assert np.median(chi2(refinement, injected, ivar, labels)[:, 0]) > 10 * np.median(normal)


def test_masked_pixels_do_not_count_and_no_pixel_gives_nan():
    refinement = layer()
    labels = np.zeros((2, K))
    inputs, ivar = spectra(refinement, labels, sigma=0.05)
    ivar[1] = 0.0
    out = chi2(refinement, inputs, ivar, labels)
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all()


def test_model_variance_grows_as_the_noise_grows():
    refinement = layer()
    ivar = torch.stack([torch.full((N_PIXELS,), 1e4), torch.full((N_PIXELS,), 1e2)])
    variance = fisher_variance(refinement, ivar).numpy()
    assert variance.shape == (2, K)
    assert np.all(variance[1] > 10 * variance[0])
    assert np.all(variance <= 1.0)  # the unit prior bounds it
