"""Fixtures of the mock_survey pipeline test: the tiny survey configuration and a raw-layer
catalog pointing at tmp_path (tests/support/mock_params.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from mock_params import raw_catalog_below, tiny_mock_params


@pytest.fixture
def tiny_params(tmp_path: Path) -> dict:
    """The project's mock_survey parameters shrunk to a 200-star survey in two pixels."""
    return tiny_mock_params(tmp_path / "raw")


@pytest.fixture
def raw_catalog_config(tmp_path: Path) -> dict:
    """conf/base/catalog_raw.yml with its paths moved below tmp_path/raw."""
    return raw_catalog_below(tmp_path / "raw")
