"""The whole chain on a tiny mock survey, through Kedro with the project's own catalog and
parameters (paths moved below tmp_path) and a private SQLite MLflow store:
mock_survey -> data_ingestion -> crossmatch -> feature_engineering -> training -> evaluation
-> inference. Checks what a user relies on: the files exist where the README says, MOCK is
stamped on them, and the MLflow run holds the parameters' outputs, metrics and model."""
from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from astropy.io import fits
from kedro.runner import SequentialRunner

from desi_abundances.pipeline_registry import DEFAULT_CHAIN
from desi_abundances.pipelines import mock_survey
from kedro_project import catalog_below, feed_params, load_project_config, redirect

pytestmark = pytest.mark.slow


def tiny_parameters(params: dict, root: Path) -> dict:
    params = redirect(copy.deepcopy(params), root)
    params["mock_survey"].update(
        n_stars=500, n_apogee_only=20, healpix_centres=[[150.0, 2.0], [180.0, 30.0]],
        batch_size=128, repeat_fraction=0.05,
    )
    params["mock_survey"]["programs"]["backup"]["fraction"] = 0.9
    params["mock_survey"]["programs"]["bright"]["fraction"] = 0.1
    params["labels"] = ["teff", "logg", "fe_h", "mg_fe", "ca_fe"]
    training = params["training"]
    training["architecture"].update(hidden_sizes=[32, 32, 32, 32, 32])
    training["optimisation"].update(max_epochs=3, batch_size=32, progress_bar=False)
    cannon = params["evaluation"]["cannon"]
    cannon.update(min_training_stars=10, max_training_stars=200, n_extra_starts=2)
    params["inference"].update(progress=False)
    return params


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    loader = load_project_config()
    pipeline = mock_survey.create_pipeline()
    for name in DEFAULT_CHAIN:
        pipeline += importlib.import_module(f"desi_abundances.pipelines.{name}").create_pipeline()
    catalog = catalog_below(loader, pipeline, root)
    params = tiny_parameters(dict(loader["parameters"]), root)
    feed_params(catalog, params)

    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    # artifacts below tmp too (the store's default artifact root is ./mlruns of the cwd)
    experiment = mlflow.create_experiment("chain_test",
                                          artifact_location=(root / "mlartifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        SequentialRunner().run(pipeline, catalog)
    return root, run.info.run_id


def test_reports_and_model_written(chain):
    root, _ = chain
    for path in ("data/03_primary/crossmatch.parquet", "data/08_reporting/crossmatch_report.json",
                 "data/06_models/model_bundle.safetensors", "data/08_reporting/metrics.json",
                 "data/08_reporting/metrics_summary.md",
                 "data/07_model_output/desi_abundances_vac.fits"):
        assert (root / path).stat().st_size > 0, path
    metrics = json.loads((root / "data/08_reporting/metrics.json").read_text())
    text = json.dumps(metrics)
    assert "fe_h" in text and "coverage_68" in text
    assert "MOCK" in (root / "data/08_reporting/metrics_summary.md").read_text()


def test_catalogue_is_marked_mock_and_complete(chain):
    root, _ = chain
    with fits.open(root / "data/07_model_output/desi_abundances_vac.fits") as hdul:
        assert any(hdu.header.get("MOCK") for hdu in hdul)
        table = next(hdu for hdu in hdul if isinstance(hdu, fits.BinTableHDU)).data
        assert len(table) > 100
        for column in ("TARGETID", "FE_H", "FE_H_ERR", "MG_FE"):
            assert column in table.columns.names
        assert np.isfinite(table["FE_H"]).mean() > 0.9


def test_mlflow_run_holds_metrics_and_model(chain):
    root, run_id = chain
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert "network/test/fe_h.residual_std" in run.data.metrics  # test split (evaluation)
    assert "0_headline/network/robust_std/fe_h" in run.data.metrics
    assert "ridge/test/fe_h.robust_std" in run.data.metrics
    assert "network/validation/fe_h.residual_std" in run.data.metrics  # training pipeline
    assert "network/training/best_epoch" in run.data.metrics
    assert len(client.get_metric_history(run_id, "network/loss/train")) >= 1
    artifacts = {item.path for item in client.list_artifacts(run_id)}
    assert {"model", "figures"} <= artifacts, artifacts
