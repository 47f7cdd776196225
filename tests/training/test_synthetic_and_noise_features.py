"""Simulated training spectra (nn.synthetic) and the noise-aware network inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from desi_abundances.cannon import design_matrix
from desi_abundances.nn import synthetic
from desi_abundances.nn.data import fit_pixel_standardisation, split_targets
from desi_abundances.nn.model import fit_label_model, split_rows
from desi_abundances.nn.network import LabelNetwork, architecture_for
from desi_abundances.nn.predict import (MASKED_PIXEL_NOISE, input_noise_variance,
                                        predict_labels)
from desi_abundances.nn.training import TrainingArrays, pixel_noise_variance

from synthetic_labels import LABELS, make_labelled_spectra


def _quadratic_arrays(n: int = 400, n_pixels: int = 30, noise: float = 0.05, seed: int = 0):
    """Standardised arrays from a known quadratic model in two labels (third label missing
    for most stars, so it is not modelled)."""
    rng = np.random.default_rng(seed)
    labels = rng.normal(0.0, 1.0, (n, 3))
    labels[rng.random(n) < 0.7, 2] = np.nan
    truth = rng.normal(0.0, 0.5, (design_matrix(labels[:, :2]).shape[1], n_pixels))
    inputs = design_matrix(labels[:, :2]) @ truth + noise * rng.standard_normal((n, n_pixels))
    sigma = np.full((n, n_pixels), noise)
    masked = rng.random((n, n_pixels)) < 0.05
    inputs[masked], sigma[masked] = 0.0, 0.0
    arrays = TrainingArrays(inputs.astype(np.float32), sigma.astype(np.float32),
                            labels.astype(np.float32), np.full((n, 3), 0.01, np.float32))
    return arrays, truth


def test_quadratic_model_recovers_the_generating_coefficients():
    arrays, truth = _quadratic_arrays()
    index = synthetic.modelled_labels(arrays.labels, 0.9)
    assert index.tolist() == [0, 1]  # the sparse third label is left out
    model = synthetic.fit_quadratic_model(arrays, index, ridge=1e-8)
    # masked pixels (input 0) are filled by the model, not fitted as data
    np.testing.assert_allclose(model.coefficients, truth, atol=0.02)
    no_filling = synthetic.fit_quadratic_model(arrays, index, ridge=1e-8, rounds=0)
    assert np.abs(no_filling.coefficients - truth).max() > 0.05
    assert model.intrinsic_variance.shape == (30,) and np.all(model.intrinsic_variance >= 0)


def test_quadratic_model_needs_enough_complete_stars():
    arrays, _ = _quadratic_arrays(n=5)
    with pytest.raises(ValueError, match="only 5 training stars have all 2 modelled labels; "
                                         "the quadratic model has 6 terms"):
        synthetic.fit_quadratic_model(arrays, np.array([0, 1]))


def test_simulated_spectra_borrow_real_noise_and_masks_and_are_seeded():
    arrays, truth = _quadratic_arrays()
    model = synthetic.fit_quadratic_model(arrays, np.array([0, 1]), ridge=1e-8)
    simulated = synthetic.simulate_training_arrays(model, arrays, 500, jitter=0.3, seed=3,
                                                   block_rows=128)
    again = synthetic.simulate_training_arrays(model, arrays, 500, jitter=0.3, seed=3,
                                               block_rows=128)
    np.testing.assert_array_equal(simulated.inputs, again.inputs)
    masked = simulated.input_noise == 0
    assert 0.02 < masked.mean() < 0.08  # the donors' 5 % masks
    assert np.all(simulated.inputs[masked] == 0)
    assert np.all(np.isnan(simulated.labels[:, 2])) and np.all(simulated.label_errors[:, :2] == 0)
    drawn = simulated.labels[:, :2].astype(np.float64)
    residual = (simulated.inputs - design_matrix(drawn) @ model.coefficients)[~masked]
    assert np.std(residual) == pytest.approx(0.05, rel=0.15)  # the donors' noise
    assert np.all(drawn >= model.label_min - 1e-6) and np.all(drawn <= model.label_max + 1e-6)


def test_noise_features_change_the_prediction_with_the_noise():
    network = LabelNetwork(40, 2, [16], input_components=8, ridge_inputs=True,
                           noise_features=True)
    inputs = torch.randn(4, 40)
    with torch.no_grad():
        quiet, _ = network(inputs, torch.full((4, 40), 0.01))
        noisy, _ = network(inputs, torch.full((4, 40), 4.0))
    assert not torch.allclose(quiet, noisy)
    with pytest.raises(ValueError, match="network\\(inputs, noise_variance\\)"):
        network(inputs)
    with pytest.raises(ValueError, match="noise_features needs input_components"):
        architecture_for(40, 2, {"noise_features": True, "input_components": 0})


def test_training_and_prediction_see_the_same_pixel_noise():
    ivar = np.array([[4.0, 0.0, 100.0]], np.float32)
    mask = np.array([[False, True, False]])
    iqr = np.array([0.5, 0.5, 0.1], np.float32)
    predicted = input_noise_variance(ivar, mask, iqr)
    sigma = np.where(mask, 0.0, 1.0 / np.sqrt(np.where(mask, 1.0, ivar)) / iqr)
    trained = pixel_noise_variance(torch.from_numpy(sigma.astype(np.float32))).numpy()
    np.testing.assert_allclose(predicted, trained, rtol=1e-6)
    assert predicted[0, 1] == pytest.approx(MASKED_PIXEL_NOISE**2)


def test_label_model_with_simulated_spectra_and_noise_features(tmp_path):
    from desi_abundances.io.model_bundle import ModelBundleDataset

    spectra = make_labelled_spectra(300, 60, seed=1, missing_fraction=0.05)
    split = split_targets(spectra.meta["TARGETID"].to_numpy(),
                          {"train": 0.7, "validation": 0.15, "test": 0.15}, seed=2)
    standardisation = fit_pixel_standardisation(spectra.select(split_rows(spectra, split,
                                                                          "train")))
    settings = {
        "architecture": {"hidden_sizes": [32, 32], "dropout": 0.0, "input_components": 16,
                         "noise_features": True},
        "optimisation": {"max_epochs": 25, "batch_size": 64, "patience": 25,
                         "progress_bar": False, "learning_rate": 3e-3, "num_threads": 1,
                         "seed": 5},
        "synthetic": {"n_spectra": 600, "seed": 1},
    }
    bundle, result, metrics = fit_label_model(spectra, split, standardisation, LABELS, settings)
    assert bundle.architecture["noise_features"] is True
    assert metrics["fe_h_residual_std"] < 0.15  # label spread 0.38 dex
    dataset = ModelBundleDataset(str(tmp_path / "b.safetensors"))
    dataset.save(bundle)
    test = spectra.select(split_rows(spectra, split, "test"))
    np.testing.assert_allclose(predict_labels(dataset.load(), test)["fe_h"],
                               predict_labels(bundle, test)["fe_h"], rtol=1e-5)
