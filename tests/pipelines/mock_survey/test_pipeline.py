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


def test_structure():
    pipeline = create_pipeline()
    assert {node.name for node in pipeline.nodes} >= {
        "simulate_mock_stars", "plan_mock_observations", "simulate_mock_coadds",
        "build_mock_mws_catalogue", "build_mock_apogee_allstar", "build_mock_truth",
        "summarise_mock_survey"}
    assert pipeline.inputs() == {"params:mock_survey"}
    assert pipeline.all_outputs() >= {"desi_coadds", "mws_catalogue", "apogee_allstar",
                                      "mock_truth", "mock_survey_complete"}


@pytest.mark.slow
def test_raw_layer_of_the_tiny_chain_follows_the_real_dtypes(tiny_chain) -> None:
    # the columns tests/schemas/test_real_schemas.py once listed as known deviations
    raw = tiny_chain.root / "data/01_raw"
    with fits.open(raw / "mwsall-pix-mock.fits") as hdul:
        assert hdul[0].header["MOCK"] is True
        rvtab = hdul["RVTAB"].data
        for column in ("SN_B", "SN_R", "SN_Z"):
            assert rvtab[column].dtype.newbyteorder("=") == np.float32, column
        assert rvtab["HEALPIX"].dtype.newbyteorder("=") == np.int64
    with fits.open(raw / "allStar-dr17-synspec_rev1-mock.fits") as hdul:
        assert hdul[0].header["MOCK"] is True
        for column in ("GAIAEDR3_PMRA", "GAIAEDR3_PMDEC", "GAIAEDR3_PARALLAX"):
            assert hdul[1].data[column].dtype.newbyteorder("=") == np.float32, column
    summary = json.loads((raw / "mock_survey_complete.json").read_text())
    assert summary["mock"] is True and summary["n_desi_stars"] == 500
