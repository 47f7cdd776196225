"""The local release server of tests/support/release_server.py as a fixture."""
import pytest
from release_server import serve_release


@pytest.fixture
def server(tmp_path):
    with serve_release(tmp_path) as served:
        yield served
