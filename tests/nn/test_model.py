"""Training: the loss goes down, seeds make runs identical, the node's outputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_labels import LABELS, make_labelled_spectra

from desi_abundances.nn.data import fit_pixel_standardisation, split_targets
from desi_abundances.nn.model import fit_label_model, split_rows
from desi_abundances.nn.predict import predict_labels
from desi_abundances.pipelines.training.nodes import train_label_model

SETTINGS = {
    "architecture": {"hidden_sizes": [32, 32], "dropout": 0.0, "input_components": 0},
    "optimisation": {"max_epochs": 80, "batch_size": 64, "patience": 80, "progress_bar": False,
                     "learning_rate": 3e-3, "warmup_epochs": 2,
                     "num_threads": 1, "seed": 5},
    "ood_percentile": 99.5,
}


@pytest.fixture(scope="module")
def data():
    spectra = make_labelled_spectra(300, 60, seed=1)
    split = split_targets(spectra.meta["TARGETID"].to_numpy(),
                          {"train": 0.7, "validation": 0.15, "test": 0.15}, seed=2)
    standardisation = fit_pixel_standardisation(spectra.select(split_rows(spectra, split,
                                                                          "train")))
    return spectra, split, standardisation


def test_training_lowers_loss_and_learns(data):
    spectra, split, standardisation = data
    no_ridge = {**SETTINGS, "optimisation": {**SETTINGS["optimisation"], "ridge_init": False}}
    bundle, result, metrics = fit_label_model(spectra, split, standardisation, LABELS, no_ridge)
    assert result.train_loss[-1] < result.train_loss[0] - 0.5
    assert min(result.validation_loss) < result.validation_loss[0] - 0.5
    assert set(metrics) >= {f"{n}_residual_std" for n in LABELS}
    # far better than predicting the mean (label spreads: 577 K, 0.38 dex)
    assert metrics["teff_residual_std"] < 250 and metrics["fe_h_residual_std"] < 0.15
    assert bundle.label_n_train.tolist() == [
        int(np.isfinite(spectra.select(split_rows(spectra, split, "train")).meta[n]).sum())
        for n in LABELS]
    assert bundle.is_mock and bundle.ood_threshold > 0
    assert np.all(bundle.label_min < bundle.label_max)
    test = spectra.select(split_rows(spectra, split, "test"))
    predictions = predict_labels(bundle, test)
    assert np.isfinite(predictions[LABELS].to_numpy()).all()


def test_same_seed_same_weights(data):
    spectra, split, standardisation = data
    short = {**SETTINGS, "optimisation": {**SETTINGS["optimisation"], "max_epochs": 3}}
    first, _, metrics_first = fit_label_model(spectra, split, standardisation, LABELS, short)
    second, _, metrics_second = fit_label_model(spectra, split, standardisation, LABELS, short)
    for key in first.state_dict:
        assert torch.equal(first.state_dict[key], second.state_dict[key])
    assert metrics_first["fe_h_residual_std"] == metrics_second["fe_h_residual_std"]
    other = {**short, "optimisation": {**short["optimisation"], "seed": 6}}
    third, _, _ = fit_label_model(spectra, split, standardisation, LABELS, other)
    assert not torch.equal(first.state_dict["head.weight"], third.state_dict["head.weight"])


def test_node_outputs_for_mlflow_datasets(data):
    spectra, split, standardisation = data
    short = {**SETTINGS, "optimisation": {**SETTINGS["optimisation"], "max_epochs": 2}}
    bundle, train_loss, validation_loss, metrics = train_label_model(
        spectra, split, standardisation, LABELS, short)
    assert len(train_loss) == len(validation_loss) == 2
    assert all(isinstance(v, float) for v in train_loss + validation_loss)
    assert metrics["network/validation/fe_h.residual_std"]["step"] == 0
    assert metrics["network/validation/fe_h.residual_std"]["value"] > 0
    assert metrics["network/training/best_epoch"]["value"] >= 0
    assert bundle.label_names == LABELS


def test_ridge_initialised_skip_path_is_frozen_and_helps(data):
    spectra, split, standardisation = data
    short = {**SETTINGS, "optimisation": {**SETTINGS["optimisation"], "max_epochs": 1}}
    with_ridge, result, metrics = fit_label_model(spectra, split, standardisation, LABELS,
                                                  short)
    no_ridge = {**short, "optimisation": {**short["optimisation"], "ridge_init": False}}
    _, result_plain, metrics_plain = fit_label_model(spectra, split, standardisation, LABELS,
                                                     no_ridge)
    # after one epoch the ridge-initialised network is already far better
    assert result.validation_mse[0] < 0.5 * result_plain.validation_mse[0]
    assert metrics["fe_h_residual_std"] < metrics_plain["fe_h_residual_std"]
    assert torch.count_nonzero(with_ridge.state_dict["skip.weight"]) > 0
    # frozen: a longer run keeps the same skip weights
    longer = {**SETTINGS, "optimisation": {**SETTINGS["optimisation"], "max_epochs": 4}}
    again, _, _ = fit_label_model(spectra, split, standardisation, LABELS, longer)
    assert torch.equal(again.state_dict["skip.weight"], with_ridge.state_dict["skip.weight"])


def test_principal_component_inputs_round_trip(data, tmp_path):
    from desi_abundances.datasets.model_bundle import ModelBundleDataset

    spectra, split, standardisation = data
    pca = {**SETTINGS, "architecture": {**SETTINGS["architecture"], "input_components": 16},
           "optimisation": {**SETTINGS["optimisation"], "max_epochs": 30}}
    bundle, result, metrics = fit_label_model(spectra, split, standardisation, LABELS, pca)
    assert bundle.architecture["input_components"] == 16
    assert bundle.state_dict["projection.weight"].shape == (16, spectra.wavelength.size)
    assert metrics["fe_h_residual_std"] < 0.15
    dataset = ModelBundleDataset(str(tmp_path / "b.safetensors"))
    dataset.save(bundle)
    test = spectra.select(split_rows(spectra, split, "test"))
    np.testing.assert_allclose(predict_labels(dataset.load(), test)["fe_h"],
                               predict_labels(bundle, test)["fe_h"])


def test_ridge_inputs_feed_the_skip_predictions_to_the_mlp(data, tmp_path):
    from desi_abundances.datasets.model_bundle import ModelBundleDataset

    spectra, split, standardisation = data
    stacked = {**SETTINGS,
               "architecture": {**SETTINGS["architecture"], "input_components": 16,
                                "ridge_inputs": True},
               "optimisation": {**SETTINGS["optimisation"], "max_epochs": 30}}
    bundle, result, metrics = fit_label_model(spectra, split, standardisation, LABELS, stacked)
    assert bundle.architecture["ridge_inputs"] is True
    assert bundle.state_dict["body.0.weight"].shape[1] == 16 + len(LABELS)
    assert metrics["fe_h_residual_std"] < 0.15
    network = bundle.network()
    test = spectra.select(split_rows(spectra, split, "test"))
    inputs = torch.randn(5, spectra.wavelength.size)
    with torch.no_grad():
        skip = network.skip(inputs)
        mean, _ = network(inputs)
        mlp_mean, _ = network.mlp(torch.cat([network.projection(inputs), skip], dim=1))
        # the MLP does read the skip predictions: changing them changes its output
        shifted, _ = network.mlp(torch.cat([network.projection(inputs), skip + 1.0], dim=1))
    torch.testing.assert_close(mean, mlp_mean + skip)
    assert not torch.allclose(shifted, mlp_mean)
    dataset = ModelBundleDataset(str(tmp_path / "b.safetensors"))
    dataset.save(bundle)
    np.testing.assert_allclose(predict_labels(dataset.load(), test)["fe_h"],
                               predict_labels(bundle, test)["fe_h"])


def test_ridge_inputs_need_the_skip_path():
    from desi_abundances.nn.network import LabelNetwork

    with pytest.raises(ValueError, match="ridge_inputs needs linear_skip"):
        LabelNetwork(10, 2, [8], linear_skip=False, ridge_inputs=True)
