"""Science helpers of data_ingestion (desi_abundances.ingestion)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from survey_tables import make_apogee, make_mws

from desi_abundances.ingestion import (
    IngestionError,
    apogee_columns,
    coadd_provenance,
    gaia_source_ids,
    join_mws,
    mws_table,
    near_apogee_mask,
    stellar_target_mask,
)

SELECTION = {"require_good_fiberstatus": True, "objtype": "TGT", "target_bitmask_columns": ["MWS_TARGET"]}
BIG_ID = 6_917_528_997_577_384_320  # beyond float64's exact integers


def test_stellar_target_mask_drops_bad_fibres_sky_and_non_mws():
    fibermap = pd.DataFrame(
        {
            "COADD_FIBERSTATUS": [0, 8, 0, 0],
            "OBJTYPE": ["TGT", "TGT", "SKY ", "TGT"],
            "MWS_TARGET": [4, 4, 0, 0],
        }
    )
    assert stellar_target_mask(fibermap, SELECTION, "f.fits").tolist() == [True, False, False, False]
    no_bits = {**SELECTION, "target_bitmask_columns": []}
    assert stellar_target_mask(fibermap, no_bits, "f.fits").tolist() == [True, False, False, True]


def test_stellar_target_mask_names_file_when_column_missing():
    with pytest.raises(IngestionError, match="coadd-x.fits FIBERMAP lacks.*COADD_FIBERSTATUS"):
        stellar_target_mask(pd.DataFrame({"OBJTYPE": ["TGT"]}), SELECTION, "coadd-x.fits")


def test_coadd_provenance_from_header_or_file_name():
    header = {"SURVEY": "main", "PROGRAM": "backup", "HPXPIXEL": 27247}
    assert coadd_provenance("anything", header) == {"SURVEY": "main", "PROGRAM": "backup", "HEALPIX": 27247}
    name = "sv3/bright/272/27247/coadd-sv3-bright-27247"
    assert coadd_provenance(name, {}) == {"SURVEY": "sv3", "PROGRAM": "bright", "HEALPIX": 27247}
    # one rule with inference: stripped, lower case (as DESI writes them)
    assert coadd_provenance("x", {"SURVEY": " Main ", "PROGRAM": "BRIGHT", "HPXPIXEL": 5})["SURVEY"] == "main"
    with pytest.raises(IngestionError, match="odd-name"):
        coadd_provenance("odd-name", {})


def test_mws_table_takes_gaia_id_row_matched_and_exact():
    mws = make_mws(
        [
            {"TARGETID": 1, "SURVEY": "main", "PROGRAM": "bright", "SOURCE_ID": BIG_ID},
            {"TARGETID": 2, "SURVEY": "main", "PROGRAM": "bright", "SOURCE_ID": 0},
        ]
    )
    table = mws_table(mws, ["VRAD", "RVS_WARN", "SUCCESS", "NOT_A_COLUMN"])
    assert table["GAIA_SOURCE_ID"].tolist() == [BIG_ID, -1]
    assert table["GAIA_SOURCE_ID"].dtype == np.int64
    assert "NOT_A_COLUMN" not in table


def test_mws_table_refuses_gaia_hdu_not_row_matched():
    mws = make_mws([{"TARGETID": 1, "SURVEY": "main", "PROGRAM": "bright"}])
    mws["GAIA"] = pd.concat([mws["GAIA"]] * 2)
    with pytest.raises(IngestionError, match="row-matched"):
        mws_table(mws, ["VRAD"])
    with pytest.raises(IngestionError, match="no RVTAB"):
        mws_table({"GAIA": mws["GAIA"]}, ["VRAD"])


def test_join_mws_on_targetid_survey_program_keeps_order_and_ids():
    mws = mws_table(
        make_mws(
            [
                {"TARGETID": 7, "SURVEY": "main", "PROGRAM": "bright", "VRAD": -100.0, "SOURCE_ID": BIG_ID},
                {"TARGETID": 7, "SURVEY": "main", "PROGRAM": "backup", "VRAD": 55.0, "SOURCE_ID": BIG_ID},
            ]
        ),
        ["VRAD", "SUCCESS"],
    )
    spectra = pd.DataFrame(
        {"TARGETID": [7, 8, 7], "SURVEY": ["main"] * 3, "PROGRAM": ["backup", "bright", "bright"]}
    )
    joined = join_mws(spectra, mws)
    assert joined["TARGETID"].tolist() == [7, 8, 7]
    np.testing.assert_array_equal(joined["VRAD"], [55.0, np.nan, -100.0])
    assert joined["GAIA_SOURCE_ID"].tolist() == [BIG_ID, -1, BIG_ID]
    assert joined["SUCCESS"].tolist() == [True, False, True]


def test_gaia_source_ids_exact_and_missing():
    assert gaia_source_ids(pd.Series([BIG_ID, 0, -1])).tolist() == [BIG_ID, -1, -1]
    assert gaia_source_ids(pd.Series([BIG_ID, None], dtype="Int64")).tolist() == [BIG_ID, -1]


def test_near_apogee_keeps_close_or_shared_gaia_id_and_moves_high_pm_stars():
    apogee = make_apogee(
        [
            {"APOGEE_ID": "a", "RA": 100.0, "DEC": 0.0, "GAIAEDR3_SOURCE_ID": 111},
            {"APOGEE_ID": "b", "RA": 200.0, "DEC": 0.0, "GAIAEDR3_SOURCE_ID": BIG_ID},
        ]
    )
    spectra = pd.DataFrame(
        {
            "TARGET_RA": [100.0 + 3 / 3600, 150.0, 10.0, 100.0],
            # last: 600 mas/yr, at 2015.5 it is 9.3 arcsec from its year-2000 APOGEE position
            "TARGET_DEC": [0.0, 0.0, 0.0, 9.3 / 3600],
            "PMRA": [0.0, 0.0, 0.0, 0.0],
            "PMDEC": [0.0, 0.0, 0.0, 600.0],
            "REF_EPOCH": [2015.5] * 4,
            "REF_ID": [-1, -1, BIG_ID, -1],
            "GAIA_SOURCE_ID": [-1, 111, -1, -1],
        }
    )
    assert near_apogee_mask(spectra, apogee, 5.0, 2000.0).tolist() == [True, True, True, True]
    assert near_apogee_mask(spectra, apogee, 1.0, 2000.0).tolist() == [False, True, True, True]
    no_ids = spectra.assign(REF_ID=-1, GAIA_SOURCE_ID=-1)
    assert near_apogee_mask(no_ids, apogee, 5.0, 2000.0).tolist() == [True, False, False, True]
    assert near_apogee_mask(no_ids, apogee, None, 2000.0).all()


def test_apogee_columns_cover_labels_errors_flags():
    columns = apogee_columns()
    for column in ("APOGEE_ID", "GAIAEDR3_SOURCE_ID", "EXTRATARG", "TEFF_ERR", "FE_H_FLAG", "MG_FE", "CE_FE_FLAG"):
        assert column in columns
    assert "TEFF_FLAG" not in columns
    assert "CE_FE" not in apogee_columns(["MG"])
    assert len(columns) == len(set(columns))


def test_coadd_stack_equals_concatenate_and_checks_grids():
    from survey_tables import make_coadd

    from desi_abundances.ingestion import CoaddStack
    from desi_abundances.spectra import CoaddSpectra

    first = make_coadd([{"TARGETID": 1, "TARGET_RA": 1.0, "TARGET_DEC": 1.0}])
    second = make_coadd([{"TARGETID": 2, "TARGET_RA": 2.0, "TARGET_DEC": 2.0, "EXTRA": 5},
                         {"TARGETID": 3, "TARGET_RA": 3.0, "TARGET_DEC": 3.0, "EXTRA": 6}], level=[4.0, 9.0])
    expected = CoaddSpectra.concatenate([first, second.select(np.arange(2))])
    stack = CoaddStack()
    stack.add(first, "a")
    stack.add(second, "b")
    assert len(stack) == 3
    got = stack.build({"MOCK": True})
    for arm in expected.arms:
        for name in ("flux", "ivar", "mask", "resolution"):
            np.testing.assert_array_equal(getattr(got.arms[arm], name), getattr(expected.arms[arm], name))
    assert got.fibermap["TARGETID"].tolist() == [1, 2, 3] and "EXTRA" not in got.fibermap
    assert got.header == {"MOCK": True} and len(got.scores) == 3
    shifted = make_coadd([{"TARGETID": 4, "TARGET_RA": 1.0, "TARGET_DEC": 1.0}])
    shifted.arms["R"].wavelength = shifted.arms["R"].wavelength + 0.1
    stack = CoaddStack()
    stack.add(first, "a")
    with pytest.raises(IngestionError, match="c: R_WAVELENGTH differs"):
        stack.add(shifted, "c")
