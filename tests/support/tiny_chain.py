"""The whole chain on a tiny mock survey, once per test session: mock_survey ->
data_ingestion -> crossmatch -> feature_engineering -> training -> evaluation -> inference,
through Kedro with the project's own catalog and parameters (paths moved below a temporary
root) and a private SQLite MLflow store. ``tests/conftest.py`` serves it as the
session-scoped ``tiny_chain`` fixture; each ``tests/pipelines/<name>/test_pipeline.py``
checks its own pipeline's outputs on it."""
from __future__ import annotations

import copy
import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset
from kedro_project import PROJECT, catalog_below, feed_params, load_project_config, redirect

from desi_abundances.pipeline_registry import DEFAULT_CHAIN
from desi_abundances.pipelines import mock_survey

CHAIN = ("mock_survey", *DEFAULT_CHAIN)
"""The pipelines the tiny chain runs, in order."""


@dataclass
class TinyChain:
    """A finished tiny chain: its root folder, catalog, parameters and MLflow run."""

    root: Path
    catalog: DataCatalog
    params: dict
    pipeline: Pipeline
    run_id: str
    tracking_uri: str


def tiny_parameters(params: dict, root: Path) -> dict:
    """The project's parameters, paths below ``root``, shrunk to a 500-star survey in two
    pixels, five labels, a small network trained for 3 epochs and a small Cannon."""
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


def run_tiny_chain(root: Path) -> TinyChain:
    """Run :data:`CHAIN` below ``root`` inside one MLflow run of a private store."""
    loader = load_project_config()
    pipeline = mock_survey.create_pipeline()
    for name in DEFAULT_CHAIN:
        pipeline += importlib.import_module(f"desi_abundances.pipelines.{name}").create_pipeline()
    catalog = catalog_below(loader, pipeline, root)
    params = tiny_parameters(dict(loader["parameters"]), root)
    feed_params(catalog, params)
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    # artifacts below tmp too (the store's default artifact root is ./mlruns of the cwd)
    experiment = mlflow.create_experiment("chain_test", artifact_location=(root / "mlartifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        SequentialRunner().run(pipeline, catalog)
    return TinyChain(root, catalog, params, pipeline, run.info.run_id, tracking_uri)


def file_outputs(pipeline: Pipeline, catalog: DataCatalog) -> list[str]:
    """The datasets ``pipeline`` writes to files (MLflow artifacts included): neither kept
    in memory nor MLflow metrics (those the end-to-end chain test checks in the run)."""
    return sorted(name for name in pipeline.all_outputs() if name in catalog
                  and type(catalog.get(name)).__name__ != "MemoryDataset"
                  and not is_mlflow_metrics(catalog.get(name)))


def is_mlflow_metrics(dataset) -> bool:
    """kedro-mlflow's metric datasets and the project's batch-logging one."""
    return (isinstance(dataset, MlflowMetricsHistoryDataset)
            or type(dataset).__module__.startswith("kedro_mlflow.io.metrics"))


def as_kedro_project(root: Path) -> Path:
    """Make ``root`` (holding a ``data/`` tree) a Kedro project: the project's pyproject.toml
    and conf/ copied and an empty src/ (Kedro requires one inside the root, resolved: a link
    does not do); the package is imported from PYTHONPATH or where it is installed.
    Returns ``root``."""
    shutil.copy(PROJECT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(PROJECT / "conf", root / "conf", dirs_exist_ok=True)
    (root / "src").mkdir(exist_ok=True)
    return root
