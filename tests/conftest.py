"""Shared pytest set-up: no telemetry, no GUI backend, a private MLflow store, and fixtures
used by several folders (the builders themselves live in tests/support).

Every MLflow call of the suite (a test's own ``mlflow.start_run``, kedro-mlflow, a server)
goes to a SQLite store and an artifact root in a temporary folder removed at the end: the
suite leaves no ``mlruns/`` or ``mlflow.db`` in the project tree. ``MLFLOW_TRACKING_URI`` is
MLflow's documented variable; ``_MLFLOW_SERVER_ARTIFACT_ROOT`` is the (private, MLflow 3.x)
variable its SQLite store reads for the default artifact root, which is ``./mlruns`` of the
working directory otherwise.
"""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

MLFLOW_TMP = Path(tempfile.mkdtemp(prefix="desi_abundances_mlflow_"))
atexit.register(shutil.rmtree, MLFLOW_TMP, ignore_errors=True)
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{MLFLOW_TMP / 'mlflow.db'}"
os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = str(MLFLOW_TMP / "artifacts")

from release_server import serve_release  # noqa: E402  (after the environment is set)
from tiny_chain import run_tiny_chain  # noqa: E402


@pytest.fixture(scope="session")
def tiny_chain(tmp_path_factory):
    """The whole chain run once on a tiny mock survey (tests/support/tiny_chain.py)."""
    return run_tiny_chain(tmp_path_factory.mktemp("chain"))


@pytest.fixture
def server(tmp_path):
    """A local DESI/APOGEE release served over HTTP (tests/support/release_server.py)."""
    with serve_release(tmp_path) as served:
        yield served
