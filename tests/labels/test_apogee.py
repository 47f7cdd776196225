"""APOGEE DR17 quality cuts and label columns (desi_abundances.labels.apogee)."""
from __future__ import annotations

import numpy as np
import pytest
from survey_tables import APOGEE_CUTS as CUTS
from survey_tables import make_apogee

from desi_abundances.labels.apogee import ApogeeTableError, passes_quality_cuts, quality_cut_masks


def test_quality_cuts_each_parameter():
    stars = make_apogee(
        [
            {"APOGEE_ID": "ok"},
            {"APOGEE_ID": "star_bad", "ASPCAPFLAG": 1 << 23},
            {"APOGEE_ID": "warn_only", "ASPCAPFLAG": 1 << 0},
            {"APOGEE_ID": "starflag", "STARFLAG": 1 << 3},
            {"APOGEE_ID": "low_snr", "SNR": 50.0},
            {"APOGEE_ID": "nan_logg", "LOGG": np.nan},
            {"APOGEE_ID": "hot", "TEFF": 8000.0},
            {"APOGEE_ID": "binary", "VSCATTER": 3.0},
            {"APOGEE_ID": "one_visit", "VSCATTER": np.nan},
            {"APOGEE_ID": "bad_mg_only", "MG_FE_FLAG": 1, "MG_FE": np.nan},
        ]
    )
    masks = quality_cut_masks(stars, CUTS)
    assert list(masks) == ["aspcapflag", "starflag", "snr_min", "finite_labels", "teff_range", "vscatter_max"]
    passing = stars["APOGEE_ID"][passes_quality_cuts(stars, CUTS)].tolist()
    assert passing == ["ok", "warn_only", "one_visit", "bad_mg_only"]
    relaxed = {**CUTS, "snr_min": None, "vscatter_max_kms": None, "starflag_bad_bits": []}
    assert set(stars["APOGEE_ID"][passes_quality_cuts(stars, relaxed)]) == {
        "ok", "warn_only", "one_visit", "bad_mg_only", "low_snr", "binary", "starflag"
    }


def test_quality_cuts_name_missing_column():
    with pytest.raises(ApogeeTableError, match="APOGEE table lacks.*VSCATTER"):
        quality_cut_masks(make_apogee([{"APOGEE_ID": "x"}]).drop(columns=["VSCATTER"]), CUTS)
