"""MlflowBatchMetricsDataset logs the same metrics (names, values, steps) as kedro-mlflow's
MlflowMetricsHistoryDataset, in batches, and refuses to log without a run."""
from __future__ import annotations

import mlflow
import pytest
from kedro.io import DatasetError
from mlflow.tracking import MlflowClient

from desi_abundances.datasets import mlflow_metrics
from desi_abundances.datasets.mlflow_metrics import MlflowBatchMetricsDataset


@pytest.fixture()
def tracking(tmp_path):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield
    mlflow.set_tracking_uri(previous)


def test_batches_log_every_metric_and_step(tracking, monkeypatch):
    monkeypatch.setattr(mlflow_metrics, "BATCH_SIZE", 3)  # several batches
    data = {f"survey/teff/g{i}/z_rstd": {"value": 1.0 + i, "step": 0} for i in range(7)}
    data["loss"] = [{"value": 3.0, "step": 0}, {"value": 2.0, "step": 1}]
    with mlflow.start_run() as run:
        dataset = MlflowBatchMetricsDataset(prefix="")
        dataset.save(data)
    client = MlflowClient()
    assert client.get_run(run.info.run_id).data.metrics["survey/teff/g6/z_rstd"] == 7.0
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(0, 3.0), (1, 2.0)]
    assert len(client.get_run(run.info.run_id).data.metrics) == 8


def test_without_a_run_it_refuses_rather_than_starting_one(tracking):
    assert mlflow.active_run() is None
    with pytest.raises(DatasetError, match="run id"):
        MlflowBatchMetricsDataset(prefix="").save({"a": {"value": 1.0, "step": 0}})
