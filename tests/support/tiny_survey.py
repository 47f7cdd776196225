"""The tiny mock survey of the end-to-end tests: its parameters, the whole chain run through
Kedro below a temporary root, and that root made a Kedro project (for notebooks)."""
from __future__ import annotations

import copy
import importlib
import shutil
from pathlib import Path

import mlflow
from kedro.runner import SequentialRunner
from kedro_project import PROJECT, catalog_below, feed_params, load_project_config, redirect

from desi_abundances.pipeline_registry import DEFAULT_CHAIN
from desi_abundances.pipelines import mock_survey


def tiny_parameters(params: dict, root: Path) -> dict:
    """The project's parameters shrunk to a 500-star survey and a 3-epoch network."""
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


def run_tiny_chain(root: Path, experiment: str = "chain_test") -> str:
    """mock_survey and the default chain on the tiny survey, every path below ``root``, MLflow
    in ``root/mlflow.db``; returns the MLflow run id."""
    loader = load_project_config()
    pipeline = mock_survey.create_pipeline()
    for name in DEFAULT_CHAIN:
        pipeline += importlib.import_module(f"desi_abundances.pipelines.{name}").create_pipeline()
    catalog = catalog_below(loader, pipeline, root)
    feed_params(catalog, tiny_parameters(dict(loader["parameters"]), root))
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        SequentialRunner().run(pipeline, catalog)
    return run.info.run_id


def as_kedro_project(root: Path) -> Path:
    """Make ``root`` (holding a ``data/`` tree) a Kedro project: the project's pyproject.toml
    and conf/ copied and an empty src/ (Kedro requires one inside the root, resolved: a link
    does not do); the package is imported from PYTHONPATH or where it is installed.
    Returns ``root``."""
    shutil.copy(PROJECT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(PROJECT / "conf", root / "conf", dirs_exist_ok=True)
    (root / "src").mkdir(exist_ok=True)
    return root
