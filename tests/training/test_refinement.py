"""The quadratic spectrum model (nn.spectrum_model) and the network's Gauss-Newton refinement
step (nn.refinement)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_labels import LABELS, make_labelled_spectra

from desi_abundances.maths.polynomial import design_matrix
from desi_abundances.nn import spectrum_model as synthetic
from desi_abundances.nn.data import fit_pixel_standardisation, split_targets
from desi_abundances.nn.model import fit_label_model, split_rows
from desi_abundances.nn.network import LabelNetwork, architecture_for
from desi_abundances.nn.predict import MAX_INPUT_NOISE, input_inverse_variance, predict_labels
from desi_abundances.nn.refinement import GaussNewtonRefinement
from desi_abundances.nn.training import TrainingArrays, inverse_variance_from_noise


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


def _linear_layer(n_pixels: int = 40, n_labels: int = 3, seed: int = 0):
    """A refinement layer holding a LINEAR model (quadratic terms 0): one undamped step from
    any start lands on the labels that generated a noiseless spectrum."""
    rng = np.random.default_rng(seed)
    n_terms = 1 + n_labels + n_labels * (n_labels + 1) // 2
    coefficients = np.zeros((n_terms, n_pixels))
    coefficients[: 1 + n_labels] = rng.normal(0.0, 1.0, (1 + n_labels, n_pixels))
    layer = GaussNewtonRefinement(n_labels, n_pixels, damping=1e-9, max_step=100.0)
    layer.set_model(np.arange(n_labels), coefficients, np.zeros(n_pixels), np.ones(n_pixels))
    return layer, coefficients


def test_one_step_on_a_linear_model_recovers_the_labels():
    layer, coefficients = _linear_layer()
    truth = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.3, -0.7]], dtype=torch.float64)
    flux = torch.from_numpy(design_matrix(truth.numpy()) @ coefficients).float()
    ivar = torch.full_like(flux, 4.0)
    start = torch.zeros(2, 3)
    delta = layer.step(flux, ivar, start)
    torch.testing.assert_close(start + delta, truth.float(), atol=1e-4, rtol=0)


def test_masked_pixels_do_not_move_the_step():
    layer, coefficients = _linear_layer(seed=1)
    truth = np.array([[0.2, 0.4, -0.3]])
    flux = torch.from_numpy(design_matrix(truth) @ coefficients).float()
    ivar = torch.full_like(flux, 4.0)
    ivar[0, :5] = 0.0                     # masked ...
    corrupted = flux.clone()
    corrupted[0, :5] = 50.0               # ... whatever their value
    start = torch.zeros(1, 3)
    torch.testing.assert_close(layer.step(corrupted, ivar, start),
                               layer.step(flux, ivar, start), atol=1e-5, rtol=0)
    torch.testing.assert_close(start + layer.step(flux, ivar, start),
                               torch.from_numpy(truth).float(), atol=1e-4, rtol=0)


def test_step_variance_is_the_inverse_fisher_without_damping():
    layer, _ = _linear_layer(seed=2)
    ivar = torch.full((1, 40), 9.0)
    jacobian = layer.coefficients[1:4].T.double()
    fisher = jacobian.T @ (9.0 * jacobian)
    torch.testing.assert_close(layer.step_variance(ivar)[0].double(),
                               torch.diag(torch.linalg.inv(fisher)), rtol=1e-3, atol=0)


def test_the_most_informative_pixels_are_kept():
    coefficients = np.zeros((1 + 1 + 1, 6))
    coefficients[1] = [0.0, 3.0, 0.1, 2.0, 0.0, 1.0]   # d flux / d label per pixel
    layer = GaussNewtonRefinement(1, 3)
    layer.set_model(np.array([0]), coefficients, np.zeros(6), np.ones(6))
    assert layer.pixel_index.tolist() == [1, 3, 5]
    with pytest.raises(ValueError, match="refinement_pixels 3 exceeds the 2 pixels"):
        layer.set_model(np.array([0]), coefficients[:, :2], np.zeros(2), np.ones(2))


def test_network_with_refinement_needs_the_inverse_variance():
    network = LabelNetwork(40, 3, [16], input_components=8, ridge_inputs=True,
                           refinement_pixels=10, refinement_labels=[0, 2])
    with pytest.raises(ValueError, match="network\\(inputs, input_ivar\\)"):
        network(torch.randn(4, 40))
    mean, _ = network(torch.randn(4, 40), torch.ones(4, 40))
    assert mean.shape == (4, 3)
    with pytest.raises(ValueError, match="refinement_pixels needs linear_skip"):
        architecture_for(40, 3, {"refinement_pixels": 10, "linear_skip": False,
                                 "ridge_inputs": False})


def test_training_and_prediction_see_the_same_inverse_variance():
    ivar = np.array([[4.0, 0.0, 100.0, 0.0]], np.float32)
    mask = np.array([[False, True, False, False]])
    iqr = np.array([0.5, 0.5, 0.1, 0.2], np.float32)
    predicted = input_inverse_variance(ivar, mask, iqr)
    with np.errstate(divide="ignore"):
        sigma = np.minimum(np.where(mask, 0.0, 1.0 / np.sqrt(ivar) / iqr), MAX_INPUT_NOISE)
    trained = inverse_variance_from_noise(torch.from_numpy(sigma.astype(np.float32))).numpy()
    np.testing.assert_allclose(predicted, trained, rtol=1e-6)
    assert predicted[0, 1] == 0 and predicted[0, 3] == pytest.approx(1 / MAX_INPUT_NOISE**2)


def test_label_model_with_refinement_and_simulated_spectra(tmp_path):
    from desi_abundances.io.datasets.model_bundle import ModelBundleDataset

    spectra = make_labelled_spectra(300, 60, seed=1, missing_fraction=0.05)
    split = split_targets(spectra.meta["TARGETID"].to_numpy(),
                          {"train": 0.7, "validation": 0.15, "test": 0.15}, seed=2)
    standardisation = fit_pixel_standardisation(spectra.select(split_rows(spectra, split,
                                                                          "train")))
    settings = {
        "architecture": {"hidden_sizes": [32, 32], "dropout": 0.0, "input_components": 16,
                         "refinement_pixels": 30},
        "optimisation": {"max_epochs": 25, "batch_size": 64, "patience": 25,
                         "progress_bar": False, "learning_rate": 3e-3, "num_threads": 1,
                         "seed": 5},
        "spectrum_model": {"n_spectra": 300, "seed": 1, "min_label_coverage": 0.9},
    }
    bundle, result, metrics = fit_label_model(spectra, split, standardisation, LABELS, settings)
    assert bundle.architecture["refinement_labels"] == [0, 1, 2]
    assert bundle.state_dict["refinement.pixel_index"].shape == (30,)
    assert metrics["fe_h_residual_std"] < 0.1  # label spread 0.38 dex
    dataset = ModelBundleDataset(str(tmp_path / "b.safetensors"))
    dataset.save(bundle)
    test = spectra.select(split_rows(spectra, split, "test"))
    np.testing.assert_allclose(predict_labels(dataset.load(), test)["fe_h"],
                               predict_labels(bundle, test)["fe_h"], rtol=1e-5)


def test_modelled_labels_shrink_to_what_the_stars_support():
    rng = np.random.default_rng(4)
    labels = rng.normal(size=(40, 4))
    labels[rng.random(40) < 0.05, 3] = np.nan   # the least covered label goes first
    # 2 stars per term: K=3 needs 2 x 10 = 20 complete stars, K=4 needs 30 (fewer have all 4)
    assert synthetic.modelled_labels(labels, 0.9).tolist() == [0, 1, 2, 3]
    assert synthetic.modelled_labels(labels[:25], 0.9).tolist() == [0, 1, 2]
    assert synthetic.modelled_labels(labels[:3], 0.9).tolist() == []
    assert synthetic.modelled_labels(labels, 0.99).tolist() == [0, 1, 2]
