"""Fixtures of the mock tests: the tiny survey configuration (tests/support/mock_params.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from mock_params import tiny_mock_params


@pytest.fixture
def tiny_params(tmp_path: Path) -> dict:
    """The project's mock_survey parameters shrunk to a 200-star survey in two pixels."""
    return tiny_mock_params(tmp_path / "raw")
