"""The evaluation pipeline end to end on tiny synthetic spectra (MemoryDatasets, no MLflow)."""
import json

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from desi_abundances.evaluation.report import common_stars
from desi_abundances.nn.bundle import ModelBundle, current_versions
from desi_abundances.nn.network import architecture_for, build_network
from desi_abundances.pipelines.evaluation import create_pipeline, nodes
from desi_abundances.spectra import Spectra

LABELS = ["teff", "logg", "fe_h", "mg_fe"]
N_PIXELS = 40
SETTINGS = {
    "seed": 1,
    "snr_bin_edges": [0.0, 30.0, 1.0e6],
    "outliers": {"nsigma": 3.0, "absolute": {"teff": 300.0}},
    "ridge": {"enabled": True, "alphas": [0.01, 1.0, 100.0]},
    "cannon": {"enabled": True, "labels": None, "regularization": 1e-6,
               "min_training_stars": 30, "max_training_stars": 150, "n_extra_starts": 1},
}


def _spectra(n=240, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.column_stack([rng.uniform(4200, 6200, n), rng.uniform(1.5, 4.5, n),
                              rng.normal(-0.3, 0.3, n), rng.normal(0.1, 0.1, n)])
    scaled = (labels - labels.mean(0)) / labels.std(0)
    response = rng.normal(scale=0.02, size=(N_PIXELS, len(LABELS)))
    flux = 1.0 + scaled @ response.T + 0.003 * (scaled[:, :1] ** 2) @ np.ones((1, N_PIXELS))
    snr = rng.uniform(10, 80, n)
    flux += rng.normal(size=flux.shape) / snr[:, None]
    ivar = (np.ones((n, N_PIXELS)) * snr[:, None] ** 2).astype(np.float32)
    mask = np.zeros((n, N_PIXELS), bool)
    mask[:5, :3] = True
    ivar[mask] = 0
    meta = pd.DataFrame({"TARGETID": np.arange(1000, 1000 + n), "snr": snr})
    for k, label in enumerate(LABELS):
        meta[label] = labels[:, k]
        meta[f"{label}_err"] = [20.0, 0.05, 0.02, 0.02][k]
    meta.loc[7, "mg_fe"] = np.nan  # missing reference label
    meta.attrs["is_mock"] = True
    spectra = Spectra(wavelength=5000.0 + np.arange(N_PIXELS, dtype=float),
                      flux=flux.astype(np.float32), ivar=ivar, mask=mask, meta=meta)
    split = np.array(["train"] * 160 + ["validation"] * 40 + ["test"] * 40)
    return spectra, pd.DataFrame({"TARGETID": meta["TARGETID"], "split": split})


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so the test can read intermediates."""

    def _release(self) -> None:
        pass


def _bundle(spectra):
    architecture = architecture_for(N_PIXELS, len(LABELS), {"hidden_sizes": [8]})
    return ModelBundle(
        state_dict=build_network(architecture).state_dict(), architecture=architecture,
        label_names=list(LABELS), wavelength=spectra.wavelength,
        pixel_median=np.ones(N_PIXELS), pixel_iqr=np.full(N_PIXELS, 0.05),
        label_offset=np.array([5000.0, 3.0, -0.3, 0.1]),
        label_scale=np.array([500.0, 1.0, 0.3, 0.1]),
        label_min=np.array([4200.0, 1.5, -1.2, -0.2]), label_max=np.array([6200, 4.5, 0.5, 0.4]),
        preprocessing={}, ood_threshold=5.0, versions=current_versions(), is_mock=True,
    )


def test_pipeline_runs_and_writes_every_output():
    spectra, split = _spectra()
    catalog = DataCatalog(
        {
            "training_spectra": MemoryDataset(spectra, copy_mode="assign"),
            "data_split": MemoryDataset(split),
            "model_bundle": MemoryDataset(_bundle(spectra), copy_mode="assign"),
            "params:labels": MemoryDataset(LABELS),
            "params:evaluation": MemoryDataset(SETTINGS),
            "params:mock_survey": MemoryDataset({"spectral_model": "analytic"}),
        }
    )
    pipeline = create_pipeline()
    for name in pipeline.all_outputs():
        catalog[name] = KeptDataset(copy_mode="assign")
    SequentialRunner().run(pipeline, catalog)

    table = catalog.load("test_predictions")
    assert len(table) == 40
    for method in ("apogee", "network", "ridge", "cannon"):
        for label in LABELS:
            assert f"{method}_{label}" in table and f"{method}_{label}_err" in table
    assert table["TARGETID"].isin(split.loc[split.split == "test", "TARGETID"]).all()

    report = catalog.load("metrics")
    assert set(report) == {"network", "ridge", "cannon", "meta"}
    json.dumps(report, allow_nan=False)
    assert report["meta"]["is_mock"] is True
    cannon_fe_h = report["cannon"]["fe_h"]
    assert cannon_fe_h["n"] == 40 and len(cannon_fe_h["by_snr"]) == 2
    # the toy spectra are linear + quadratic in the labels: both peers beat 0.1 dex
    assert report["cannon"]["fe_h"]["robust_std"] < 0.1
    assert report["ridge"]["fe_h"]["robust_std"] < 0.1

    flat = catalog.load("evaluation_mlflow_metrics")
    assert {"network/test/fe_h.residual_std", "0_headline/network/robust_std/fe_h",
            "cannon/test/fe_h.residual_std", "ridge/test/fe_h.residual_std"} <= set(flat)
    assert all(set(v) == {"value", "step"} for v in flat.values())

    markdown = catalog.load("metrics_summary")
    assert "MOCK" in markdown.splitlines()[0]
    for label in LABELS:
        assert f"| {label} |" in markdown
    # no evaluation.cramer_rao in SETTINGS: the information limit is skipped, with a reason
    assert catalog.load("cramer_rao")["status"] == "skipped"
    assert "Information limit" in markdown and "Not computed: disabled" in markdown
    for name in pipeline.all_outputs():
        if name.endswith("_figure"):
            assert isinstance(catalog.load(name), Figure)


def test_missing_test_split_is_refused():
    spectra, split = _spectra(n=240)
    split["split"] = "train"
    with pytest.raises(ValueError, match="test split"):
        nodes.split_spectra(spectra, split)


def test_cannon_drops_the_sparsest_label_when_too_few_complete_stars():
    spectra, split = _spectra(n=240)
    spectra.meta.loc[: 150, "mg_fe"] = np.nan
    settings = {**SETTINGS, "cannon": {**SETTINGS["cannon"], "min_training_stars": 60}}
    train, _, test = nodes.split_spectra(spectra, split)
    frame, info = nodes.predict_cannon(train, test, LABELS, settings)
    assert info["labels_dropped_for_missing_values"] == ["mg_fe"]
    assert frame["mg_fe"].isna().all() and frame["fe_h"].notna().all()


def test_common_stars_scores_every_method_on_the_same_stars():
    table = pd.DataFrame({
        "TARGETID": [1, 2, 3],
        "network_fe_h": [0.1, np.nan, 0.3], "network_fe_h_err": [0.1, 0.1, 0.1],
        "ridge_fe_h": [0.1, 0.2, 0.3], "ridge_fe_h_err": [0.1, 0.1, 0.1],
        "cannon_fe_h": [np.nan, np.nan, np.nan], "cannon_fe_h_err": [np.nan] * 3,
    })
    shared = common_stars(table, ["fe_h"])
    assert shared["ridge_fe_h"].isna().tolist() == [False, True, False]
    assert shared["ridge_fe_h_err"].isna().tolist() == [False, True, False]
    assert table["ridge_fe_h"].notna().all()  # input untouched


def test_catalog_and_parameters_load(tmp_path):
    """conf/base/catalog_evaluation.yml builds; every pipeline output has an entry or is an
    intermediate; the parameters hold what the nodes read."""
    from pathlib import Path

    from omegaconf import OmegaConf  # what Kedro's OmegaConfigLoader parses YAML with

    def load(path):
        return OmegaConf.to_container(OmegaConf.load(root / path))

    root = Path(__file__).resolve().parents[3]
    config = load("conf/base/catalog_evaluation.yml")
    catalog = DataCatalog.from_config(config)
    for name in ("test_predictions", "metrics", "metrics_summary", "evaluation_mlflow_metrics",
                 "cramer_rao", "test_cramer_rao_bounds", "cramer_rao_mlflow_metrics"):
        assert name in config and catalog.get(name) is not None
    for name in ("train", "validation", "test"):  # the split, made once, kept in memory
        assert config[f"evaluation_{name}_spectra"]["copy_mode"] == "assign"
    figures = [name for name in create_pipeline().all_outputs() if name.endswith("_figure")]
    assert len(figures) == 7 and all(name in config for name in figures)
    settings = load("conf/base/parameters_evaluation.yml")
    evaluation = settings["evaluation"]
    assert list(settings) == ["evaluation"]
    assert np.all(np.diff(evaluation["snr_bin_edges"]) > 0)
    assert {"ridge", "cannon", "outliers", "seed", "cramer_rao"} <= set(evaluation)
    crb = evaluation["cramer_rao"]
    assert crb["spectral_model"] in ("mock_survey", "analytic", "emulator")
    assert {"enabled", "finite_difference_steps", "max_stars", "snr_windows"} <= set(crb)
