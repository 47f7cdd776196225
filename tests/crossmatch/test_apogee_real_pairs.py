"""Positional matching against a REAL published DESI DR1 x APOGEE DR12 cross-match
(1,827 pairs within 1.5 arcsec; no proper motions in the file). Skipped when absent."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from desi_abundances.crossmatch.apogee import match_spectra_to_apogee

REAL = (Path(__file__).resolve().parents[3] / "shared" / "data" / "desi_dr1_x_apogee"
        / "apogee_dr12_desi_dr1_crossmatch.csv")
pytestmark = pytest.mark.skipif(not REAL.exists(), reason=f"{REAL} absent")


def test_reproduces_the_published_pairs():
    real = pd.read_csv(REAL)
    spectra = pd.DataFrame(
        {
            "TARGETID": real["desi_targetid"].astype(np.int64),
            "TARGET_RA": real["desi_mean_fiber_ra"],
            "TARGET_DEC": real["desi_mean_fiber_dec"],
            "snr": 1.0,
        }
    )
    # shuffle APOGEE so that a row-order coincidence cannot pass the test
    stars = real[["APOGEE_ID", "RA", "DEC"]].sample(frac=1.0, random_state=1).reset_index(drop=True)
    settings = {"match_radius_arcsec": 1.5, "use_gaia_id": False}
    pairs, _ = match_spectra_to_apogee(spectra, stars, settings)
    got = dict(zip(pairs["TARGETID"], stars["APOGEE_ID"].to_numpy()[pairs["apogee_row"]]))
    truth = dict(zip(real["desi_targetid"], real["APOGEE_ID"]))
    assert len(got) >= 0.999 * len(truth)
    assert all(truth[target] == apogee_id for target, apogee_id in got.items())
    sep = dict(zip(real["desi_targetid"], real["separation_arcsec"]))
    np.testing.assert_allclose(pairs["sep_arcsec"], [sep[t] for t in pairs["TARGETID"]], atol=0.02)
