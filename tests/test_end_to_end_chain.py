"""The whole chain on a tiny mock survey, through Kedro with the project's own catalog and
parameters (paths moved below tmp_path) and a private SQLite MLflow store:
mock_survey -> data_ingestion -> crossmatch -> feature_engineering -> training -> evaluation
-> inference. Checks what a user relies on: the files exist where the README says, MOCK is
stamped on them, and the MLflow run holds the parameters' outputs, metrics and model."""
from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from astropy.io import fits

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain(tiny_chain):
    return tiny_chain


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
    assert "fe_h_residual_std" in run.data.metrics  # test split (evaluation)
    assert "validation.fe_h_residual_std" in run.data.metrics  # validation split (training)
    assert len(client.get_metric_history(run_id, "train_loss")) >= 1
    artifacts = {item.path for item in client.list_artifacts(run_id)}
    assert {"model", "figures"} <= artifacts, artifacts
