"""APOGEE quality cuts and DESI x APOGEE matching (desi_abundances.crossmatch)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from survey_tables import APOGEE_CUTS as CUTS
from survey_tables import make_apogee

from desi_abundances.constants import ABUNDANCE_COLUMNS
from desi_abundances.crossmatch.apogee import (
    crossmatch,
    match_spectra_to_apogee,
)

ARCSEC = 1 / 3600
PARAMS = {
    "apogee_cuts": CUTS,
    "match_radius_arcsec": 1.0,
    "gaia_id_max_sep_arcsec": 3.0,
    "common_epoch_yr": 2015.5,
    "apogee_epoch_yr": 2000.0,
}


def spectra_table(rows: list[dict]) -> pd.DataFrame:
    defaults = {"PMRA": 0.0, "PMDEC": 0.0, "REF_EPOCH": 2015.5, "REF_ID": -1, "REF_CAT": "G2",
                "GAIA_SOURCE_ID": -1, "snr": 30.0, "SURVEY": "main", "PROGRAM": "bright",
                "HEALPIX": 1, "vrad_kms": 0.0}
    table = pd.DataFrame([{**defaults, **row} for row in rows])
    for column in ("TARGETID", "REF_ID", "GAIA_SOURCE_ID"):
        table[column] = table[column].astype(np.int64)
    return table


@pytest.fixture
def scene():
    """APOGEE stars and DESI spectra covering every matching case; see comments."""
    stars = make_apogee(
        [
            {"APOGEE_ID": "2M-A", "RA": 10.0, "DEC": 0.0, "GAIAEDR3_SOURCE_ID": 5001},  # plain id match
            {"APOGEE_ID": "2M-B", "RA": 20.0, "DEC": 0.0, "GAIAEDR3_SOURCE_ID": 6002},  # DR2 6001 -> EDR3 6002
            {"APOGEE_ID": "2M-C", "RA": 30.0, "DEC": 0.0, "GAIAEDR3_SOURCE_ID": 7002},  # changed id, no EDR3 in DESI
            # fast halo star: 80 mas/yr north, no Gaia id nor motion in APOGEE, year-2000 position
            {"APOGEE_ID": "2M-D", "RA": 40.0, "DEC": 0.0, "GAIAEDR3_PMRA": np.nan, "GAIAEDR3_PMDEC": np.nan},
            {"APOGEE_ID": "2M-E", "RA": 50.0, "DEC": 0.0, "GAIAEDR3_SOURCE_ID": 9001, "ASPCAPFLAG": 1 << 23},
            {"APOGEE_ID": "2M-F", "RA": 60.0, "DEC": 0.0, "GAIAEDR3_SOURCE_ID": 8001, "SNR": 90.0,
             "EXTRATARG": 1 << 4, "TELESCOPE": "lco25m"},  # duplicate row of 2M-F
            {"APOGEE_ID": "2M-F", "RA": 60.0, "DEC": 0.0, "GAIAEDR3_SOURCE_ID": 8001, "SNR": 300.0},
            {"APOGEE_ID": "2M-G", "RA": 70.0, "DEC": 0.0, "GAIAEDR3_SOURCE_ID": 9500},  # observed twice by DESI
            {"APOGEE_ID": "2M-H", "RA": 80.0, "DEC": 0.0, "GAIAEDR3_SOURCE_ID": 2222},  # neighbour of a DESI target
            {"APOGEE_ID": "2M-I", "RA": 91.0, "DEC": 0.0, "GAIAEDR3_SOURCE_ID": 3333},  # id re-used far away
        ]
    )
    spectra = spectra_table(
        [
            {"TARGETID": 1, "TARGET_RA": 10.0 + 0.05 * ARCSEC, "TARGET_DEC": 0.0, "REF_ID": 5001, "GAIA_SOURCE_ID": 5001},
            {"TARGETID": 2, "TARGET_RA": 20.0, "TARGET_DEC": 0.0, "REF_ID": 6001, "GAIA_SOURCE_ID": 6002},
            {"TARGETID": 3, "TARGET_RA": 30.0, "TARGET_DEC": 0.3 * ARCSEC, "REF_ID": 7001},
            {"TARGETID": 4, "TARGET_RA": 40.0, "TARGET_DEC": 80e-3 * 15.5 * ARCSEC, "PMDEC": 80.0},
            {"TARGETID": 5, "TARGET_RA": 50.0, "TARGET_DEC": 0.0, "GAIA_SOURCE_ID": 9001},
            {"TARGETID": 6, "TARGET_RA": 60.0, "TARGET_DEC": 0.0, "GAIA_SOURCE_ID": 8001},
            {"TARGETID": 7, "TARGET_RA": 70.0, "TARGET_DEC": 0.0, "REF_ID": 9500, "snr": 20.0},
            {"TARGETID": 7, "TARGET_RA": 70.0, "TARGET_DEC": 0.0, "REF_ID": 9500, "snr": 60.0, "PROGRAM": "backup"},
            {"TARGETID": 8, "TARGET_RA": 80.0, "TARGET_DEC": 0.5 * ARCSEC, "GAIA_SOURCE_ID": 1111},
            {"TARGETID": 9, "TARGET_RA": 90.0, "TARGET_DEC": 0.0, "REF_ID": 3333},
            {"TARGETID": 10, "TARGET_RA": 100.0, "TARGET_DEC": 0.0},
        ]
    )
    return spectra, stars


def test_matching_cases(scene):
    spectra, stars = scene
    table, report = crossmatch(spectra, stars, PARAMS)
    got = dict(zip(table["APOGEE_ID"], table["TARGETID"]))
    assert got == {"2M-A": 1, "2M-B": 2, "2M-C": 3, "2M-D": 4, "2M-F": 6, "2M-G": 7}
    method = dict(zip(table["APOGEE_ID"], table["match_method"]))
    assert method == {"2M-A": "gaia_id", "2M-B": "gaia_id", "2M-C": "position", "2M-D": "position",
                      "2M-F": "gaia_id", "2M-G": "gaia_id"}
    assert table["APOGEE_ID"].is_unique and table["TARGETID"].is_unique
    # the fast star matches only because both positions were moved to a common epoch
    sep = dict(zip(table["APOGEE_ID"], table["sep_arcsec"]))
    assert sep["2M-D"] < 0.01
    assert sep["2M-C"] == pytest.approx(0.3, abs=1e-3)
    # the duplicate row of 2M-F is never used; the star observed twice keeps its best S/N spectrum
    row = table.set_index("APOGEE_ID")
    assert row.loc["2M-F", "APOGEE_SNR"] == 300.0 and row.loc["2M-F", "TELESCOPE"] == "apo25m"
    assert row.loc["2M-G", "snr"] == 60.0 and row.loc["2M-G", "PROGRAM"] == "backup"
    assert row.loc["2M-G", "stacked_row"] == 7
    # report: the STAR_BAD star matched, then cut; the neighbour and the re-used id refused
    assert report["matching"]["position_refused_conflicting_gaia_id"] == 1
    assert report["matching"]["gaia_id_refused_separation"] == 1
    assert report["matching"]["one_per_star"] == 7
    assert report["matched_after_cuts"][0] == {"step": "matched_pairs", "remaining": 7}
    assert report["matched_after_cuts"][1] == {"step": "aspcapflag", "remaining": 6}
    assert report["apogee_cuts"][:3] == [
        {"step": "allstar_rows", "remaining": 10},
        {"step": "extratarg_duplicate", "remaining": 9},
        {"step": "aspcapflag", "remaining": 8},
    ]
    assert report["final"]["pairs"] == 6 and report["final"]["by_method"] == {"gaia_id": 4, "position": 2}


def test_without_epoch_propagation_the_fast_star_is_lost(scene):
    spectra, stars = scene
    still = spectra.assign(PMDEC=0.0)
    table, _ = crossmatch(still, stars, PARAMS)
    assert "2M-D" not in set(table["APOGEE_ID"])


def test_apogee_proper_motion_alone_is_enough(scene):
    spectra, stars = scene
    fast = stars.copy()
    fast.loc[fast["APOGEE_ID"] == "2M-D", ["GAIAEDR3_PMRA", "GAIAEDR3_PMDEC"]] = [0.0, 80.0]
    table, _ = crossmatch(spectra.assign(PMDEC=np.nan), fast, PARAMS)
    assert "2M-D" in set(table["APOGEE_ID"])


def test_mws_primary_beats_snr(scene):
    spectra, stars = scene
    spectra = spectra.assign(PRIMARY=[True] * 6 + [True, False] + [True] * 3)
    table, _ = crossmatch(spectra, stars, PARAMS)
    row = table.set_index("APOGEE_ID").loc["2M-G"]
    assert row["PROGRAM"] == "bright" and row["stacked_row"] == 6


def test_positional_only_and_id_only_modes(scene):
    spectra, stars = scene
    pairs, counts = match_spectra_to_apogee(spectra, stars, {**PARAMS, "use_gaia_id": False})
    assert counts["gaia_id_edr3_pairs"] == 0 and counts["one_per_star_position"] == len(pairs)
    pairs, counts = match_spectra_to_apogee(spectra, stars, {**PARAMS, "use_position": False})
    assert counts["position_pairs"] == 0 and (pairs["match_method"] == "gaia_id").all()


def test_crossmatch_table_columns(scene):
    spectra, stars = scene
    table, _ = crossmatch(spectra, stars, PARAMS)
    head = ["TARGETID", "APOGEE_ID", "sep_arcsec", "match_method", "snr", "TEFF", "TEFF_ERR",
            "LOGG", "LOGG_ERR", "FE_H", "FE_H_ERR", "FE_H_FLAG"]
    assert list(table.columns[: len(head)]) == head
    for column in ABUNDANCE_COLUMNS:
        for suffix in ("", "_ERR", "_FLAG"):
            assert f"{column}{suffix}" in table
    assert table["TARGETID"].dtype == np.int64


def test_empty_inputs_give_empty_table(scene):
    spectra, stars = scene
    table, report = crossmatch(spectra.iloc[:0], stars, PARAMS)
    assert len(table) == 0 and report["final"]["pairs"] == 0
    table, report = crossmatch(spectra, stars.iloc[:0], PARAMS)
    assert len(table) == 0


def test_compare_with_truth_counts_recovery_and_false_matches(scene):
    from desi_abundances.crossmatch.apogee import compare_with_truth

    spectra, stars = scene
    table, _ = crossmatch(spectra, stars, PARAMS)
    truth = pd.DataFrame(
        {
            "TARGETID": [1, 2, 3, 4, 5, 6, 7, 8, 99],
            "APOGEE_ID": ["2M-A", "2M-B", "2M-C", "2M-D", "2M-E", "2M-F", "2M-G", None, "2M-H"],
        }
    )
    result = compare_with_truth(table, truth, spectra, stars, CUTS)
    assert (result["expected"], result["recovered"], result["false_matches"]) == (6, 6, 0)
    assert result["recovery"] == 1.0
    wrong = table.copy()
    wrong.loc[wrong["APOGEE_ID"] == "2M-A", "TARGETID"] = 10
    result = compare_with_truth(wrong, truth, spectra, stars, CUTS)
    assert result["false_matches"] == 1 and result["missed_apogee_ids"] == ["2M-A"]
    assert result["recovered"] == 5


def test_one_pair_per_apogee_id_even_without_duplicate_flag(scene):
    spectra, stars = scene
    unflagged = stars.assign(EXTRATARG=0)  # both 2M-F rows now candidates
    spectra = pd.concat(
        [spectra, spectra_table([{"TARGETID": 66, "TARGET_RA": 60.0, "TARGET_DEC": 0.0, "GAIA_SOURCE_ID": 8001, "snr": 99.0}])],
        ignore_index=True,
    )
    table, _ = crossmatch(spectra, unflagged, PARAMS)
    assert table["APOGEE_ID"].is_unique and table["TARGETID"].is_unique
    assert table.set_index("APOGEE_ID").loc["2M-F", "TARGETID"] == 66
