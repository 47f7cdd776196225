"""Shared pytest set-up: no telemetry, no GUI backend; fixtures used by several folders (the
builders themselves live in tests/support, imported when a fixture is first used)."""
import os

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def tiny_chain(tmp_path_factory):
    """The whole chain run once on a tiny mock survey (tests/support/tiny_chain.py)."""
    from tiny_chain import run_tiny_chain  # kedro + mlflow only for the tests that use it

    return run_tiny_chain(tmp_path_factory.mktemp("chain"))


@pytest.fixture
def server(tmp_path):
    """A local DESI/APOGEE release served over HTTP (tests/support/release_server.py)."""
    from release_server import serve_release

    with serve_release(tmp_path) as served:
        yield served
