"""Shared pytest set-up: no telemetry, no GUI backend, a private MLflow store.

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

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

MLFLOW_TMP = Path(tempfile.mkdtemp(prefix="desi_abundances_mlflow_"))
atexit.register(shutil.rmtree, MLFLOW_TMP, ignore_errors=True)
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{MLFLOW_TMP / 'mlflow.db'}"
os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = str(MLFLOW_TMP / "artifacts")
