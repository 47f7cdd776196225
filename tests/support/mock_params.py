"""The tests' tiny mock survey: the project's mock_survey parameters shrunk to 200 stars in
two pixels, and the raw-layer catalog entries moved below a temporary folder."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml
from kedro_project import PROJECT

PARAMS_FILE = PROJECT / "conf" / "base" / "parameters_mock_survey.yml"


def tiny_mock_params(raw: Path) -> dict:
    """The project's mock_survey parameters shrunk to a 200-star survey in two pixels,
    written below ``raw``."""
    params = copy.deepcopy(yaml.safe_load(PARAMS_FILE.read_text())["mock_survey"])
    params.update(n_stars=200, n_apogee_only=20, healpix_centres=[[150.0, 2.0], [180.0, 30.0]],
                  batch_size=128, output_dir=str(raw), repeat_fraction=0.1)
    return params


def raw_catalog_below(raw: Path) -> dict:
    """conf/base/catalog_raw.yml with its paths moved from data/01_raw to ``raw``."""
    entries = yaml.safe_load((PARAMS_FILE.parent / "catalog_raw.yml").read_text())
    for entry in entries.values():
        key = "path" if "path" in entry else "filepath"
        entry[key] = str(raw / Path(entry[key]).relative_to("data/01_raw"))
    return entries
