"""LabelTableDataset: FITS (through the project's FITS table writer), Parquet and CSV."""
from __future__ import annotations

import pandas as pd
import pytest
from astropy.io import fits
from kedro.io import DatasetError

from desi_abundances.datasets.label_table import LabelTableDataset


@pytest.mark.parametrize("suffix", [".fits", ".parquet", ".csv"])
def test_round_trip(tmp_path, suffix):
    frame = pd.DataFrame({"REFERENCE_ID": ["x", "y"], "TARGETID": [1, 2], "TEFF": [5000.0, 6000.0]})
    path = tmp_path / f"t{suffix}"
    dataset = LabelTableDataset(str(path), save_args={"header": {"REAL": [True, "test"]},
                                                      "units": {"TEFF": "K"}})
    dataset.save(frame)
    loaded = dataset.load()
    assert loaded["REFERENCE_ID"].tolist() == ["x", "y"]
    assert loaded["TEFF"].tolist() == [5000.0, 6000.0]
    assert loaded.attrs["source"] == str(path)
    if suffix == ".fits":
        with fits.open(path) as hdul:
            assert hdul[0].header["REAL"] is True
            assert hdul[1].name == "LABELS" and hdul[1].columns["TEFF"].unit == "K"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="unknown"):
        LabelTableDataset(str(tmp_path / "t.xlsx"))
    with pytest.raises(DatasetError, match="does not exist"):
        LabelTableDataset(str(tmp_path / "t.csv")).load()
