"""feature_engineering on the session's tiny chain (tests/support/tiny_chain.py): the
training spectra (preprocessed, MOCK-stamped), the split and the pixel standardisation; and
the pipeline's structure (nodes, inputs, outputs)."""
from __future__ import annotations

import numpy as np
import pytest
from tiny_chain import file_outputs

from desi_abundances.pipelines import feature_engineering

pytestmark = pytest.mark.slow


def test_structure():
    pipeline = feature_engineering.create_pipeline()
    assert {node.name for node in pipeline.nodes} >= {
        "build_training_spectra", "split_training_set", "fit_pixel_standardisation"}
    assert pipeline.inputs() >= {"crossmatch", "spectra_metadata", "stacked_spectra",
                                 "params:feature_engineering", "params:labels"}
    assert pipeline.all_outputs() >= {"training_spectra", "data_split", "pixel_standardisation"}


def test_every_file_output_written(tiny_chain):
    names = file_outputs(feature_engineering.create_pipeline(), tiny_chain.catalog)
    assert set(names) >= {"training_spectra", "data_split", "pixel_standardisation"}
    for name in names:
        assert tiny_chain.catalog.exists(name), name


def test_training_set_split_and_standardisation(tiny_chain):
    catalog = tiny_chain.catalog
    spectra = catalog.load("training_spectra")
    split = catalog.load("data_split")
    standardisation = catalog.load("pixel_standardisation")
    assert spectra.meta.attrs["is_mock"] is True
    assert spectra.flux.shape == (len(spectra.meta), spectra.wavelength.size)
    assert len(spectra.meta) > 100 and split["TARGETID"].is_unique
    assert set(spectra.meta["TARGETID"]) <= set(split["TARGETID"])
    assert {"train", "validation", "test"} <= set(split["split"])
    assert len(standardisation) == spectra.wavelength.size
    for label in tiny_chain.params["labels"]:
        assert label in spectra.meta.columns, label
    assert np.isfinite(spectra.meta["fe_h"]).mean() > 0.9
