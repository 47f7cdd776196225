"""FitsTableDataset: round trips, column selection, byte order, strings, clear errors."""
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from kedro.io import DatasetError

from desi_abundances.io.datasets.fits_table import FitsTableDataset


def _big_endian_table(path: Path) -> None:
    cols = [
        fits.Column(name="APOGEE_ID", format="18A", array=np.array([b"2M00000001+0000001 ", b"2M2 "])),
        fits.Column(name="TEFF", format="E", array=np.array([4800.0, 5100.0], dtype=">f4")),
        fits.Column(name="ASPCAPFLAG", format="K", array=np.array([0, 1 << 23], dtype=">i8")),
        fits.Column(name="VEC", format="3E", array=np.arange(6, dtype=">f4").reshape(2, 3)),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="ALLSTAR")]).writeto(path)


def test_load_decodes_strings_native_byte_order_and_selects_columns(tmp_path: Path) -> None:
    path = tmp_path / "allstar.fits"
    _big_endian_table(path)
    frame = FitsTableDataset(str(path), hdu=1, columns=["APOGEE_ID", "TEFF"]).load()
    assert list(frame.columns) == ["APOGEE_ID", "TEFF"]
    assert frame["APOGEE_ID"].tolist() == ["2M00000001+0000001", "2M2"]
    assert frame["TEFF"].dtype.byteorder in ("=", "|", "<")
    np.testing.assert_allclose(frame["TEFF"], [4800.0, 5100.0])
    full = FitsTableDataset(str(path), hdu="ALLSTAR").load()
    assert full["ASPCAPFLAG"].tolist() == [0, 1 << 23]
    assert np.array_equal(full["VEC"].iloc[1], [3.0, 4.0, 5.0])


def test_multi_hdu_round_trip_with_header_and_units(tmp_path: Path) -> None:
    path = tmp_path / "mws.fits"
    data = {
        "RVTAB": pd.DataFrame({"TARGETID": np.array([1, 2], dtype=np.int64),
                               "VRAD": [10.5, -300.0], "SUCCESS": [True, False],
                               "PROGRAM": ["backup", "bright"]}),
        "GAIA": pd.DataFrame({"SOURCE_ID": np.array([7, 8], dtype=np.int64)}),
    }
    dataset = FitsTableDataset(str(path), hdu=["RVTAB", "GAIA"],
                               columns={"RVTAB": ["TARGETID", "VRAD", "PROGRAM", "SUCCESS"]},
                               save_args={"header": {"MOCK": [True, "mock data"]},
                                          "units": {"RVTAB": {"VRAD": "km/s"}}})
    dataset.save(data)
    loaded = dataset.load()
    assert list(loaded) == ["RVTAB", "GAIA"]
    pd.testing.assert_frame_equal(loaded["RVTAB"], data["RVTAB"][["TARGETID", "VRAD", "PROGRAM", "SUCCESS"]],
                                  check_dtype=False)
    assert loaded["RVTAB"]["SUCCESS"].dtype == bool
    assert loaded["GAIA"]["SOURCE_ID"].tolist() == [7, 8]
    with fits.open(path) as hdul:
        assert hdul[0].header["MOCK"] is True
        assert hdul[0].header.comments["MOCK"] == "mock data"
        assert hdul["RVTAB"].columns["VRAD"].unit == "km/s"
    assert dataset.exists()
    assert pickle.loads(pickle.dumps(dataset))._filepath == dataset._filepath
    preview = dataset.preview()
    assert preview["columns"][:2] == ["TARGETID", "VRAD"]


def test_missing_hdu_and_column_name_file_and_item(tmp_path: Path) -> None:
    path = tmp_path / "allstar.fits"
    _big_endian_table(path)
    with pytest.raises(DatasetError, match=r"allstar\.fits.*'NOPE'"):
        FitsTableDataset(str(path), hdu="NOPE").load()
    with pytest.raises(DatasetError, match=r"allstar\.fits.*HDU 1.*\['MG_FE'\]"):
        FitsTableDataset(str(path), hdu=1, columns=["TEFF", "MG_FE"]).load()


def test_corrupt_and_truncated_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"this is not a FITS file" * 200)
    with pytest.raises(DatasetError, match=r"bad\.fits"):
        FitsTableDataset(str(bad)).load()
    path = tmp_path / "cut.fits"
    _big_endian_table(path)
    path.write_bytes(path.read_bytes()[:4000])  # header of HDU 1 ends at 5760 bytes
    with pytest.raises(DatasetError, match=r"cut\.fits"):
        FitsTableDataset(str(path), hdu=1).load()
    with pytest.raises(DatasetError, match=r"missing\.fits.*does not exist"):
        FitsTableDataset(str(tmp_path / "missing.fits")).load()


def test_truncated_table_data_and_large_selection(tmp_path: Path) -> None:
    path = tmp_path / "rows.fits"
    n = 5000
    frame = pd.DataFrame({"A": np.arange(n, dtype=np.int64), "B": np.linspace(0, 1, n),
                          "FLAG": np.arange(n) % 2 == 0, "NAME": [f"s{i} " for i in range(n)]})
    FitsTableDataset(str(path)).save(frame)
    loaded = FitsTableDataset(str(path), columns=["NAME", "FLAG", "A"]).load()
    assert loaded["NAME"].iloc[7] == "s7" and loaded["FLAG"].iloc[2] and not loaded["FLAG"].iloc[3]
    np.testing.assert_array_equal(loaded["A"], frame["A"])
    path.write_bytes(path.read_bytes()[:20000])  # cut inside the table data
    with pytest.raises(DatasetError, match=r"rows\.fits.*HDU 1.*truncated"):
        FitsTableDataset(str(path)).load()


def test_integer_columns_keep_their_values(tmp_path: Path) -> None:
    """Unsigned integers (stored with a BZERO offset) and int8 (widened) round-trip; they
    used to wrap around (65000 read back as -536)."""
    from desi_abundances.io.fits_table import read_tables, write_tables

    frame = pd.DataFrame({"U2": np.array([1, 65000], np.uint16),
                          "U4": np.array([1, 2**32 - 1], np.uint32),
                          "U8": np.array([1, 2**63 + 5], np.uint64),
                          "I1": np.array([-5, 100], np.int8)})
    path = tmp_path / "ints.fits"
    write_tables(path, {"T": frame})
    loaded = read_tables(path, "T")
    for column in frame.columns:
        np.testing.assert_array_equal(loaded[column].to_numpy(), frame[column].to_numpy())
