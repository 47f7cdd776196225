"""Fixtures of the mock-survey tests: a tiny survey configuration and a raw-layer catalog
pointing at tmp_path."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

PARAMS_FILE = Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_mock_survey.yml"


@pytest.fixture
def tiny_params(tmp_path: Path) -> dict:
    """The project's mock_survey parameters shrunk to a 200-star survey in two pixels."""
    params = copy.deepcopy(yaml.safe_load(PARAMS_FILE.read_text())["mock_survey"])
    params.update(n_stars=200, n_apogee_only=20, healpix_centres=[[150.0, 2.0], [180.0, 30.0]],
                  batch_size=128, output_dir=str(tmp_path / "raw"), repeat_fraction=0.1)
    return params


@pytest.fixture
def raw_catalog_config(tmp_path: Path) -> dict:
    """conf/base/catalog_raw.yml with its paths moved below tmp_path/raw."""
    raw = yaml.safe_load((PARAMS_FILE.parent / "catalog_raw.yml").read_text())
    root = tmp_path / "raw"
    for entry in raw.values():
        key = "path" if "path" in entry else "filepath"
        entry[key] = str(root / Path(entry[key]).relative_to("data/01_raw"))
    return raw
