"""Fixtures of the mock-survey tests: a tiny survey configuration and a catalog in tmp_path."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

PARAMS_FILE = Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_mock_survey.yml"


def tiny_config(n_stars: int = 200, **overrides) -> dict:
    """The project's mock_survey parameters shrunk to a tiny, fast survey."""
    params = copy.deepcopy(yaml.safe_load(PARAMS_FILE.read_text())["mock_survey"])
    params.update(n_stars=n_stars, n_apogee_only=20,
                  healpix_centres=[[150.0, 2.0], [180.0, 30.0]], batch_size=128)
    params.update(overrides)
    return params


@pytest.fixture
def tiny_params() -> dict:
    return tiny_config()


def catalog_config(root: Path) -> dict:
    """Catalog entries of the raw layer, pointing at ``root``."""
    return {
        "desi_coadds": {
            "type": "partitions.PartitionedDataset", "path": str(root / "desi" / "healpix"),
            "filename_suffix": ".fits", "overwrite": True,
            "dataset": {"type": "desi_abundances.io.desi_coadd.DesiCoaddDataset"},
        },
        "mws_catalogue": {
            "type": "desi_abundances.io.fits_table.FitsTableDataset",
            "filepath": str(root / "mwsall-pix-mock.fits"), "hdu": ["RVTAB", "FIBERMAP", "GAIA"],
            "save_args": {"header": {"MOCK": [True, "mock"]}},
        },
        "apogee_allstar": {
            "type": "desi_abundances.io.fits_table.FitsTableDataset",
            "filepath": str(root / "allStar-dr17-synspec_rev1-mock.fits"), "hdu": 1,
        },
        "mock_truth": {"type": "pandas.ParquetDataset", "filepath": str(root / "mock_truth.parquet")},
        "mock_survey_complete": {"type": "json.JSONDataset",
                                 "filepath": str(root / "mock_survey_complete.json")},
    }
