"""The MLflow UI server, as a person would open it: `mlflow server` on 127.0.0.1 (a free
port) over a temporary SQLite store holding a tiny run logged the project's way (metric
names, run presentation hook, a figure); asked through the REST API whether the experiment
opens as model development and the run carries the headline metrics and figures. Seconds;
the server is stopped at the end."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import quote

import mlflow
import pytest
from matplotlib.figure import Figure
from ui_servers import get_json, running

from desi_abundances import hooks
from desi_abundances.evaluation import metrics, mlflow_names

PER_METHOD = {
    "network": {"fe_h": {"std": 0.06, "robust_std": 0.045, "z_std": 1.02, "coverage_68": 0.69,
                         "n": 841}},
    "ridge": {"fe_h": {"std": 0.08, "robust_std": 0.060, "z_std": 1.10, "n": 841}},
}
RUN_PARAMS = {"pipeline_names": ["training", "evaluation"],
              "runtime_params": {"training": {"optimisation": {"max_epochs": 60}}},
              "runner": "<kedro.runner.sequential_runner.SequentialRunner object at 0x1>"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, run id) of an MLflow server over a store with one tiny run."""
    root = tmp_path_factory.mktemp("mlflow_ui")
    store = f"sqlite:///{root / 'mlflow.db'}"
    artifacts = (root / "artifacts").as_uri()
    mlflow.set_tracking_uri(store)
    try:
        experiment = mlflow.create_experiment(
            "desi_abundances", artifact_location=artifacts,
            tags={hooks.EXPERIMENT_KIND_TAG: hooks.EXPERIMENT_KIND})
        with mlflow.start_run(experiment_id=experiment, run_name="training+evaluation") as run:
            hooks.MlflowRunPresentation().before_pipeline_run(RUN_PARAMS)
            mlflow.log_metrics(metrics.flat_metrics(PER_METHOD))
            figure = Figure(figsize=(2, 2))
            figure.subplots().plot([0, 1], [0, 1])
            mlflow.log_figure(figure, "figures/one_to_one.png")
    finally:
        mlflow.set_tracking_uri(None)
    mlflow_cli = str(Path(sys.executable).parent / "mlflow")
    command = [mlflow_cli, "server", "--backend-store-uri", store,
               "--default-artifact-root", artifacts, "--host", "127.0.0.1", "--port", "{port}",
               "--workers", "1"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    with running(command, root, env, ready_path="/health", timeout=90) as base:
        yield base, run.info.run_id


def test_experiment_opens_on_its_runs(server):
    base, _ = server
    answer = get_json(f"{base}/api/2.0/mlflow/experiments/get-by-name"
                      f"?experiment_name=desi_abundances")
    tags = {t["key"]: t["value"] for t in answer["experiment"].get("tags", [])}
    assert tags[hooks.EXPERIMENT_KIND_TAG] == "custom_model_development"


def test_run_carries_headline_metrics_and_figures(server):
    base, run_id = server
    run = get_json(f"{base}/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]
    names = {m["key"] for m in run["data"]["metrics"]}
    for label_metric in mlflow_names.HEADLINE_METRICS:
        assert mlflow_names.headline_metric("network", "fe_h", label_metric) in names
    assert "ridge/test/fe_h.robust_std" in names
    assert min(names).startswith(mlflow_names.HEADLINE)  # listed first
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.runName"] == "training+evaluation training.optimisation.max_epochs=60"
    assert tags["runner"] == "SequentialRunner" and "max_epochs=60" in tags["mlflow.note.content"]
    files = get_json(f"{base}/api/2.0/mlflow/artifacts/list?run_id={run_id}"
                     f"&path={quote('figures')}")["files"]
    assert any(f["path"] == "figures/one_to_one.png" for f in files)
