"""Shared pytest set-up: no telemetry, no GUI backend, a private MLflow store; the tiny mock
survey's chain, run once per session for the end-to-end and notebook tests."""
import os

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def tiny_chain(tmp_path_factory):
    """(root, MLflow run id) of mock_survey + the default chain on the tiny survey below root."""
    from tiny_survey import run_tiny_chain  # after pytest has put tests/support on the path
    root = tmp_path_factory.mktemp("chain")
    return root, run_tiny_chain(root)
