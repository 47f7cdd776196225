"""DesiCoaddDataset: round trip, the real DESI files, partitions, clear errors."""
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset

from desi_abundances.desi.grids import ARMS, FLUX_UNIT, arm_wavelength
from desi_abundances.io.datasets.desi_coadd import DesiCoaddDataset
from desi_abundances.io.desi_coadd import IVAR_UNIT
from desi_abundances.spectra import ArmSpectra, CoaddSpectra

REAL_DESI = Path(__file__).resolve().parents[3] / "shared" / "data" / "real_desi"
REAL_FILES = sorted(REAL_DESI.glob("coadd-*.fits")) if REAL_DESI.is_dir() else []


def tiny_coadd(n: int = 3, resolution: bool = False, seed: int = 0) -> CoaddSpectra:
    rng = np.random.default_rng(seed)
    arms = {}
    for arm in ARMS:
        wave = arm_wavelength(arm)
        arms[arm] = ArmSpectra(
            wavelength=wave,
            flux=rng.normal(10, 1, (n, wave.size)).astype(np.float32),
            ivar=rng.uniform(0.5, 1, (n, wave.size)).astype(np.float32),
            mask=(rng.random((n, wave.size)) < 0.01).astype(np.int32) * 4,
            resolution=rng.random((n, 11, wave.size)).astype(np.float32) if resolution else None,
        )
    fibermap = pd.DataFrame({
        "TARGETID": np.arange(n, dtype=np.int64) + 39627000000000000,
        "TARGET_RA": rng.uniform(0, 1, n), "TARGET_DEC": rng.uniform(0, 1, n),
        "OBJTYPE": ["TGT"] * (n - 1) + ["SKY"],
        "REF_CAT": ["G2"] * n, "COADD_FIBERSTATUS": np.zeros(n, dtype=np.int32),
    })
    scores = pd.DataFrame({"TARGETID": fibermap["TARGETID"], "TSNR2_BGS": np.ones(n, np.float32)})
    return CoaddSpectra(arms=arms, fibermap=fibermap, scores=scores,
                        header={"SURVEY": "main", "PROGRAM": "backup", "HPXPIXEL": 27247, "MOCK": True})


def test_round_trip_layout_dtypes_and_units(tmp_path: Path) -> None:
    path = tmp_path / "coadd-main-backup-27247.fits"
    coadd = tiny_coadd(resolution=True)
    DesiCoaddDataset(str(path)).save(coadd)
    with fits.open(path) as hdul:
        names = [h.name for h in hdul]
        assert names[:2] == ["PRIMARY", "FIBERMAP"]
        assert names[2:7] == ["B_WAVELENGTH", "B_FLUX", "B_IVAR", "B_MASK", "B_RESOLUTION"]
        assert names[-1] == "SCORES"
        assert hdul["B_FLUX"].header["BUNIT"] == FLUX_UNIT
        assert hdul["R_IVAR"].header["BUNIT"] == IVAR_UNIT
        assert hdul["Z_MASK"].data.dtype == np.dtype(">i4")
        assert hdul[0].header["MOCK"] is True and "mock" in hdul[0].header.comments["MOCK"]
    loaded = DesiCoaddDataset(str(path)).load()
    assert loaded.is_mock and loaded.header["HPXPIXEL"] == 27247
    for arm in ARMS:
        assert loaded.arms[arm].resolution is None  # not read by default
        np.testing.assert_array_equal(loaded.arms[arm].flux, coadd.arms[arm].flux)
        np.testing.assert_array_equal(loaded.arms[arm].mask, coadd.arms[arm].mask)
        assert loaded.arms[arm].flux.dtype == np.float32
        assert loaded.arms[arm].flux.dtype.byteorder in ("=", "<")
    assert loaded.fibermap["OBJTYPE"].tolist() == ["TGT", "TGT", "SKY"]
    with_res = DesiCoaddDataset(str(path), load_args={"read_resolution": True, "arms": ["R"],
                                                      "fibermap_columns": ["TARGETID"]}).load()
    assert list(with_res.arms) == ["R"] and list(with_res.fibermap.columns) == ["TARGETID"]
    np.testing.assert_array_equal(with_res.arms["R"].resolution, coadd.arms["R"].resolution)


@pytest.mark.skipif(not REAL_FILES, reason="real DESI coadds not available")
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_reads_real_desi_coadds(path: Path) -> None:
    coadd = DesiCoaddDataset(str(path), load_args={"read_resolution": True}).load()
    assert coadd.n_spectra == 1
    with fits.open(path) as hdul:
        for arm in ARMS:
            np.testing.assert_array_equal(coadd.arms[arm].flux, hdul[f"{arm}_FLUX"].data)
            np.testing.assert_allclose(coadd.arms[arm].wavelength, arm_wavelength(arm), rtol=1e-12)
            assert coadd.arms[arm].resolution.shape == (1, 11, arm_wavelength(arm).size)
    assert coadd.fibermap["TARGETID"].dtype == np.int64
    assert coadd.fibermap["OBJTYPE"].iloc[0] == "TGT"
    assert coadd.exp_fibermap is not None and coadd.scores is not None


def test_partitioned_dataset_wraps_it(tmp_path: Path) -> None:
    root = tmp_path / "healpix"
    parts = PartitionedDataset(path=str(root), dataset=DesiCoaddDataset, filename_suffix=".fits")
    parts.save({"main/backup/272/27247/coadd-main-backup-27247": tiny_coadd(2),
                "main/bright/272/27247/coadd-main-bright-27247": lambda: tiny_coadd(4)})
    loaded = pickle.loads(pickle.dumps(parts)).load()
    assert sorted(loaded) == ["main/backup/272/27247/coadd-main-backup-27247",
                              "main/bright/272/27247/coadd-main-bright-27247"]
    assert loaded["main/bright/272/27247/coadd-main-bright-27247"]().n_spectra == 4
    dataset = DesiCoaddDataset(str(root / "main/backup/272/27247/coadd-main-backup-27247.fits"))
    assert dataset.exists() and "filepath" in dataset._describe()
    assert dataset.preview()["columns"][0] == "TARGETID"


def _write_without(path: Path, coadd: CoaddSpectra, drop: str) -> None:
    from desi_abundances.io.desi_coadd import coadd_to_hdulist

    hdul = coadd_to_hdulist(coadd)
    del hdul[drop]
    hdul.writeto(path)


def test_errors_name_file_and_hdu_or_column(tmp_path: Path) -> None:
    coadd = tiny_coadd()
    missing = tmp_path / "missing_hdu.fits"
    _write_without(missing, coadd, "Z_IVAR")
    with pytest.raises(DatasetError, match=r"missing_hdu\.fits.*'Z_IVAR'"):
        DesiCoaddDataset(str(missing)).load()
    good = tmp_path / "good.fits"
    DesiCoaddDataset(str(good)).save(coadd)
    with pytest.raises(DatasetError, match=r"good\.fits.*FIBERMAP.*\['NOT_A_COLUMN'\]"):
        DesiCoaddDataset(str(good), load_args={"fibermap_columns": ["NOT_A_COLUMN"]}).load()
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"truncated\.fits"):
        DesiCoaddDataset(str(truncated)).load()
    corrupt = tmp_path / "corrupt.fits"
    corrupt.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(DatasetError, match=r"corrupt\.fits"):
        DesiCoaddDataset(str(corrupt)).load()
    with pytest.raises(DatasetError, match="unknown DesiCoaddDataset load_args"):
        DesiCoaddDataset(str(good), load_args={"arm": ["B"]})


def test_shape_mismatch_is_reported(tmp_path: Path) -> None:
    from desi_abundances.io.desi_coadd import coadd_to_hdulist

    hdul = coadd_to_hdulist(tiny_coadd(3))
    hdul["R_IVAR"].data = hdul["R_IVAR"].data[:2]
    path = tmp_path / "mismatch.fits"
    hdul.writeto(path)
    with pytest.raises(DatasetError, match=r"mismatch\.fits.*'R_IVAR'.*shape \(2, 2326\).*\(3, 2326\)"):
        DesiCoaddDataset(str(path)).load()


def test_plain_reader_errors_name_file_hdu_and_column(tmp_path: Path) -> None:
    from desi_abundances.io.desi_coadd import read_coadd, write_coadd
    from desi_abundances.io.fits_table import FitsReadError

    path = tmp_path / "plain.fits"
    write_coadd(path, tiny_coadd(3))
    coadd = read_coadd(path, arms=["B"], fibermap_columns=["TARGETID"])
    assert list(coadd.arms) == ["B"] and list(coadd.fibermap.columns) == ["TARGETID"]
    assert coadd.arms["B"].flux.dtype == np.float32 and coadd.arms["B"].flux.dtype.isnative
    assert type(coadd.arms["B"].flux) is np.ndarray  # not a view of the memory-mapped file
    with pytest.raises(FitsReadError, match=r"plain\.fits.*FIBERMAP.*\['NOPE'\]"):
        read_coadd(path, fibermap_columns=["NOPE"])
    path.write_bytes(path.read_bytes()[:-30000])
    with pytest.raises(FitsReadError, match=r"plain\.fits.*truncated"):
        read_coadd(path)
    assert not list(tmp_path.glob(".*tmp"))
