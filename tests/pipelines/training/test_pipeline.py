"""training on the session's tiny chain (tests/support/tiny_chain.py): the model bundle
(MOCK, the configured labels, the network's input size) and the loss histories; and the
pipeline's structure (node, inputs, outputs)."""
from __future__ import annotations

import pytest
from tiny_chain import file_outputs

from desi_abundances.pipelines import training

pytestmark = pytest.mark.slow


def test_structure():
    pipeline = training.create_pipeline()
    assert {node.name for node in pipeline.nodes} >= {"train_label_model"}
    assert pipeline.inputs() >= {"data_split", "pixel_standardisation", "training_spectra",
                                 "params:labels", "params:training"}
    assert pipeline.all_outputs() >= {"model_bundle", "training_metrics",
                                      "training_loss_history", "validation_loss_history"}


def test_every_file_output_written(tiny_chain):
    names = file_outputs(training.create_pipeline(), tiny_chain.catalog)
    assert "model_bundle" in names
    for name in names:
        assert tiny_chain.catalog.exists(name), name


def test_model_bundle(tiny_chain):
    bundle = tiny_chain.catalog.load("model_bundle")
    spectra = tiny_chain.catalog.load("training_spectra")
    assert bundle.is_mock is True
    assert list(bundle.label_names) == tiny_chain.params["labels"]
    assert bundle.wavelength.size == spectra.wavelength.size
    assert bundle.architecture["hidden_sizes"] == [32, 32, 32, 32, 32]
