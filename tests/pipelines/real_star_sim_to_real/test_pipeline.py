"""The real_star_sim_to_real pipeline: a bundle applied to the test split (MemoryDatasets)."""
import numpy as np
import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from tiny_real_stars import EVALUATION, LABELS, TRAINING, tiny_library_spectra

from desi_abundances.nn.data import fit_pixel_standardisation
from desi_abundances.nn.model import fit_label_model
from desi_abundances.pipelines.real_star_sim_to_real import create_pipeline


def test_pipeline_reports_the_gap_beside_the_real_trained_network():
    spectra, _ = tiny_library_spectra()
    split = pd.DataFrame({"TARGETID": spectra.meta["TARGETID"],
                          "split": np.repeat(["train", "validation", "test"], [120, 20, 20])})
    standardisation = fit_pixel_standardisation(spectra.select(np.arange(120)))
    bundle, _, _ = fit_label_model(spectra, split, standardisation, LABELS, TRAINING)
    catalog = DataCatalog({
        "mock_model_bundle": MemoryDataset(bundle, copy_mode="assign"),
        "training_spectra": MemoryDataset(spectra, copy_mode="assign"),
        "data_split": MemoryDataset(split),
        "metrics": MemoryDataset({"network": {"teff": {"robust_std": 42.0}}}),
        "params:labels": MemoryDataset(LABELS),
        "params:evaluation": MemoryDataset(EVALUATION),
    })
    pipeline = create_pipeline()
    outputs = {name: MemoryDataset(copy_mode="assign") for name in pipeline.all_outputs()}
    for name, dataset in outputs.items():
        catalog[name] = dataset
    SequentialRunner().run(pipeline, catalog)
    assert len(outputs["sim_to_real_predictions"].load()) == 20
    assert outputs["sim_to_real"].load()["n_test"] == 20
    assert "sim_to_real/ood_fraction" in outputs["sim_to_real_mlflow_metrics"].load()
    text = outputs["sim_to_real_summary"].load()
    assert text.startswith("# Sim-to-real gap - REAL (tiny test libraries)") and "| 42 |" in text
