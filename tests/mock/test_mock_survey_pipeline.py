"""The mock_survey pipeline on a tiny survey, through the real raw-layer catalog entries."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from desi_abundances.constants import ABUNDANCE_COLUMNS, EXTRATARG_DUPLICATE_BIT
from desi_abundances.mock import survey
from desi_abundances.pipelines.mock_survey import create_pipeline


@pytest.fixture
def built(tiny_params, raw_catalog_config, tmp_path: Path) -> tuple[DataCatalog, Path]:
    catalog = DataCatalog.from_config(raw_catalog_config)
    catalog["params:mock_survey"] = tiny_params
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog, tmp_path / "raw"


def test_pipeline_writes_every_raw_dataset(built) -> None:
    catalog, root = built
    summary = json.loads((root / "mock_survey_complete.json").read_text())
    assert summary["n_desi_stars"] == 200 and summary["n_coadd_files"] == 4
    assert summary["total_bytes"] > 0 and summary["mock"] is True
    coadd_files = sorted((root / "desi" / "healpix").rglob("coadd-*.fits"))
    assert len(coadd_files) == 4
    for path in coadd_files:  # the real DESI tree: survey/program/hpx//100/hpx/coadd-...
        survey_name, program, group, hpx = path.parts[-5:-1]
        assert path.name == f"coadd-{survey_name}-{program}-{hpx}.fits"
        assert int(group) == int(hpx) // 100
        header = fits.getheader(path)
        assert header["MOCK"] is True and header["HPXPIXEL"] == int(hpx)
        assert header["HPXNSIDE"] == 64 and header["HPXNEST"] is True
        assert "B_RESOLUTION" not in [h.name for h in fits.open(path)]
    # summary is the last file written
    assert (root / "mock_survey_complete.json").stat().st_mtime >= max(
        p.stat().st_mtime for p in coadd_files)

    coadds = catalog.load("desi_coadds")
    fibermaps = pd.concat([load().fibermap.assign(partition=pid) for pid, load in coadds.items()])
    stars = fibermaps[fibermaps["OBJTYPE"] == "TGT"]
    assert (fibermaps.loc[fibermaps["OBJTYPE"] == "SKY", "MWS_TARGET"] == 0).all()
    assert (fibermaps["OBJTYPE"] == "SKY").any()
    repeats = stars.groupby("TARGETID")["partition"].nunique()
    assert (repeats == 2).any()  # observed in bright and backup
    assert (stars["REF_CAT"] == "G2").all() and (stars["REF_EPOCH"] == 2015.5).all()
    for column in ("PMRA", "PARALLAX", "GAIA_PHOT_BP_MEAN_MAG", "EBV", "FLUX_Z", "SCND_TARGET",
                   "COADD_NUMEXP", "COADD_EXPTIME", "HEALPIX", "DESI_TARGET", "BGS_TARGET"):
        assert column in stars

    mws = catalog.load("mws_catalogue")
    assert set(mws) == {"RVTAB", "FIBERMAP", "GAIA"}
    assert len(mws["RVTAB"]) == len(mws["FIBERMAP"]) == len(mws["GAIA"]) == len(stars)
    np.testing.assert_array_equal(mws["RVTAB"]["TARGETID"], mws["FIBERMAP"]["TARGETID"])
    assert mws["RVTAB"].groupby("TARGETID")["PRIMARY"].sum().eq(1).all()
    changed = (mws["GAIA"]["SOURCE_ID"].to_numpy() != mws["FIBERMAP"]["REF_ID"].to_numpy()).mean()
    assert changed < 0.2

    allstar = catalog.load("apogee_allstar")
    for column in ("APOGEE_ID", "TELESCOPE", "FIELD", "RA", "DEC", "GAIAEDR3_SOURCE_ID", "SNR",
                   "STARFLAG", "ASPCAPFLAG", "EXTRATARG", "TEFF", "LOGG", "FE_H", "M_H",
                   "ALPHA_M", "VMICRO", "VSCATTER", "VHELIO_AVG", "FE_H_FLAG"):
        assert column in allstar, column
    for column in ABUNDANCE_COLUMNS:
        assert {column, f"{column}_ERR", f"{column}_FLAG"} <= set(allstar.columns)
        missing = allstar[column].isna()
        assert (allstar.loc[missing, f"{column}_FLAG"] != 0).all()
    assert allstar["P_FE"].isna().mean() > allstar["MG_FE"].isna().mean()
    assert allstar["APOGEE_ID"].str.match(r"^2M\d{8}[+-]\d{7}$").all()
    duplicates = (allstar["EXTRATARG"] & (1 << EXTRATARG_DUPLICATE_BIT)) != 0
    assert duplicates.any()
    assert allstar.loc[duplicates, "APOGEE_ID"].isin(allstar.loc[~duplicates, "APOGEE_ID"]).all()

    truth = catalog.load("mock_truth")
    assert len(truth) == 220 and truth["APOGEE_ID"].isna().any()
    assert (truth.loc[~truth["in_desi"], "TARGETID"] == -1).all()
    assert truth["APOGEE_ID"].notna().sum() == (~duplicates).sum()
    # Gaia ids survive exactly (no float round trip) and DR2 != EDR3 only for a few stars
    assert set(stars["REF_ID"]) <= set(truth["gaia_dr2_id"])
    assert set(mws["GAIA"]["SOURCE_ID"]) <= set(truth["gaia_edr3_id"])


def test_same_seed_same_survey(tiny_params) -> None:
    first = survey.simulate_stars(tiny_params)
    again = survey.simulate_stars(tiny_params)
    pd.testing.assert_frame_equal(first, again)
    other = survey.simulate_stars({**tiny_params, "seed": tiny_params["seed"] + 1})
    assert not np.allclose(first["teff"], other["teff"])


def test_apogee_positions_are_at_epoch_2000(tiny_params) -> None:
    stars = survey.simulate_stars({**tiny_params, "apogee_position_error_arcsec": 0.0})
    offset = np.hypot((stars["ra_desi"] - stars["ra_2000"]) * np.cos(np.radians(stars["dec_2000"])),
                      stars["dec_desi"] - stars["dec_2000"]) * 3600
    expected = np.hypot(stars["pmra"], stars["pmdec"]) * 15.5 / 1000
    np.testing.assert_allclose(offset, expected, rtol=1e-3, atol=1e-4)
    assert offset.max() < 1.1
