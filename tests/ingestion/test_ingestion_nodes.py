"""Nodes of the data_ingestion pipeline on coadds built in memory."""
from __future__ import annotations

import numpy as np
import pytest
from survey_tables import make_apogee, make_coadd, make_mws

from desi_abundances.ingestion import IngestionError
from desi_abundances.pipelines.data_ingestion.nodes import ingest_spectra, select_apogee_stars
from desi_abundances.spectra import median_snr

PARAMS = {
    "selection": {"require_good_fiberstatus": True, "objtype": "TGT", "target_bitmask_columns": ["MWS_TARGET"]},
    "prefilter_radius_arcsec": 5.0,
    "apogee_epoch_yr": 2000.0,
    "mws_rvtab_columns": ["VRAD", "VRAD_ERR", "RVS_WARN", "SUCCESS", "SN_B", "SN_R", "SN_Z", "PRIMARY"],
    "apogee_elements": None,
}


class Loaders(dict):
    """A PartitionedDataset-like dict of lazy loaders that records how often each loads."""

    def __init__(self, coadds):
        super().__init__()
        self.calls = {name: 0 for name in coadds}
        for name, coadd in coadds.items():
            self[name] = self._loader(name, coadd)

    def _loader(self, name, coadd):
        def load():
            self.calls[name] += 1
            return coadd

        return load


@pytest.fixture
def survey():
    apogee = make_apogee(
        [
            {"APOGEE_ID": "2M-A", "RA": 10.0, "DEC": 5.0, "GAIAEDR3_SOURCE_ID": 1001},
            {"APOGEE_ID": "2M-B", "RA": 20.0, "DEC": 5.0},
        ]
    )
    bright = make_coadd(
        [
            {"TARGETID": 1, "TARGET_RA": 10.0, "TARGET_DEC": 5.0, "REF_ID": 1001},
            {"TARGETID": 2, "TARGET_RA": 10.0, "TARGET_DEC": 5.0, "COADD_FIBERSTATUS": 2},  # bad fibre
            {"TARGETID": 3, "TARGET_RA": 10.0, "TARGET_DEC": 5.0, "OBJTYPE": "SKY"},
            {"TARGETID": 4, "TARGET_RA": 50.0, "TARGET_DEC": 5.0},  # far from APOGEE
            {"TARGETID": 5, "TARGET_RA": 20.0 + 2 / 3600, "TARGET_DEC": 5.0},
        ],
        program="bright", healpix=100,
    )
    backup = make_coadd(
        [
            {"TARGETID": 1, "TARGET_RA": 10.0, "TARGET_DEC": 5.0, "REF_ID": 1001},  # observed twice
            {"TARGETID": 6, "TARGET_RA": 10.0, "TARGET_DEC": 5.0, "MWS_TARGET": 0},
        ],
        program="backup", healpix=100, level=[77.0, 5.0],
    )
    coadds = Loaders(
        {
            "main/bright/1/100/coadd-main-bright-100": bright,
            "main/backup/1/100/coadd-main-backup-100": backup,
        }
    )
    mws = make_mws(
        [
            {"TARGETID": 1, "SURVEY": "main", "PROGRAM": "bright", "SOURCE_ID": 1001, "PRIMARY": False},
            {"TARGETID": 1, "SURVEY": "main", "PROGRAM": "backup", "SOURCE_ID": 1001, "VRAD": -40.0},
            {"TARGETID": 5, "SURVEY": "main", "PROGRAM": "bright", "RVS_WARN": 2},
        ]
    )
    return coadds, mws, apogee, bright, backup


def test_ingest_spectra_selects_and_row_matches(survey):
    coadds, mws, apogee, bright, backup = survey
    stacked, meta = ingest_spectra(coadds, mws, select_apogee_stars(apogee, PARAMS), PARAMS)
    assert coadds.calls == {name: 1 for name in coadds}
    # sorted partition ids: backup first, then bright
    assert meta["TARGETID"].tolist() == [1, 1, 5]
    assert meta["PROGRAM"].tolist() == ["backup", "bright", "bright"]
    assert meta["SURVEY"].tolist() == ["main"] * 3 and meta["HEALPIX"].tolist() == [100] * 3
    assert meta["source_row"].tolist() == [0, 0, 4]
    assert meta["source_file"].tolist()[0] == "main/backup/1/100/coadd-main-backup-100"
    assert stacked.fibermap["TARGETID"].tolist() == meta["TARGETID"].tolist()
    np.testing.assert_array_equal(stacked.arms["B"].flux[0], backup.arms["B"].flux[0])
    np.testing.assert_array_equal(stacked.arms["Z"].flux[2], bright.arms["Z"].flux[4])
    assert stacked.arms["R"].resolution.shape[0] == 3
    np.testing.assert_allclose(meta["snr"], median_snr(stacked))
    np.testing.assert_allclose(meta["snr"], [77.0, 10.0, 50.0])
    # MWS join on (TARGETID, SURVEY, PROGRAM)
    np.testing.assert_array_equal(meta["VRAD"], [-40.0, 12.5, 12.5])
    np.testing.assert_array_equal(meta["vrad_kms"], [-40.0, 12.5, np.nan])  # RVS_WARN on 5
    assert meta["GAIA_SOURCE_ID"].tolist() == [1001, 1001, -1]
    assert meta["PRIMARY"].tolist() == [True, False, True]
    assert stacked.is_mock and stacked.header["NCOADDS"] == 2
    for column in ("TARGET_RA", "PMRA", "REF_EPOCH", "REF_ID", "MWS_TARGET", "COADD_FIBERSTATUS", "SN_R"):
        assert column in meta


def test_prefilter_null_keeps_every_good_stellar_target(survey):
    coadds, mws, apogee, *_ = survey
    _, meta = ingest_spectra(coadds, mws, apogee, {**PARAMS, "prefilter_radius_arcsec": None})
    assert sorted(meta["TARGETID"].tolist()) == [1, 1, 4, 5]


def test_ingest_spectra_fails_clearly_when_nothing_survives(survey):
    coadds, mws, apogee, *_ = survey
    with pytest.raises(IngestionError, match="no spectrum survived"):
        ingest_spectra(coadds, mws, apogee.assign(RA=300.0, GAIAEDR3_SOURCE_ID=0), PARAMS)
    with pytest.raises(IngestionError, match="no coadd"):
        ingest_spectra({}, mws, apogee, PARAMS)


def test_select_apogee_stars_keeps_used_columns_only():
    allstar = make_apogee([{"APOGEE_ID": " 2M1 ", "RA": 1.0, "DEC": 2.0}]).assign(UNUSED=1, MEMBER="x")
    stars = select_apogee_stars(allstar, PARAMS)
    assert "UNUSED" not in stars and "MG_FE_FLAG" in stars and "EXTRATARG" in stars
    assert stars["APOGEE_ID"].tolist() == ["2M1"]
    with pytest.raises(IngestionError, match="allStar HDU 1 lacks.*TEFF"):
        select_apogee_stars(allstar.drop(columns=["TEFF"]), PARAMS)
