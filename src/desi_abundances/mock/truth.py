"""The mock survey's truth table (one row per star) and its build summary."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.constants import APOGEE_DR17_ELEMENTS


def truth_table(stars: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    """One row per star: true labels (python names), TARGETID (-1 when not in DESI),
    APOGEE_ID (None when not in APOGEE), programmes observed, population component, etc."""
    progs = observations[observations["star_id"] >= 0].groupby("star_id")["PROGRAM"] \
        .agg(lambda p: ";".join(sorted(set(p))))
    nspec = observations[observations["star_id"] >= 0].groupby("star_id").size()
    labels = ["teff", "logg", "fe_h", "alpha_m", "vmic",
              *[f"{el.lower()}_fe" for el in APOGEE_DR17_ELEMENTS]]
    truth = stars[["star_id", "TARGETID", "APOGEE_ID", "component", "alpha_sequence", "stage", *labels,
                   "mass_msun", "vrad_kms", "binary", "distance_pc", "g_mag", "g_abs", "bp_rp",
                   "ebv", "pmra", "pmdec", "ra_2016", "dec_2016", "gaia_edr3_id",
                   "gaia_dr2_id", "healpix", "in_desi", "in_apogee"]].copy()
    truth["programs"] = truth["star_id"].map(progs).fillna("")
    truth["n_spectra"] = truth["star_id"].map(nspec).fillna(0).astype(np.int64)
    return truth.reset_index(drop=True)


def build_summary(stars: pd.DataFrame, observations: pd.DataFrame, allstar: pd.DataFrame,
                  started: float, file_sizes: dict[str, int]) -> dict[str, Any]:
    """Build summary written to mock_survey_complete.json."""
    tgt = observations["OBJTYPE"] == "TGT"
    return {
        "mock": True,
        "n_desi_stars": int(stars["in_desi"].sum()),
        "n_spectra": int(tgt.sum()),
        "n_sky_fibres": int((~tgt).sum()),
        "n_repeat_observations": int(tgt.sum() - observations.loc[tgt, "star_id"].nunique()),
        "n_coadd_files": int(observations["partition"].nunique()),
        "n_desi_in_apogee": int((stars["in_desi"] & stars["in_apogee"]).sum()),
        "n_apogee_rows": int(len(allstar)),
        "n_apogee_only_stars": int((~stars["in_desi"]).sum()),
        "build_seconds": round(time.time() - started, 1),
        "file_sizes_bytes": file_sizes,
        "total_bytes": int(sum(file_sizes.values())),
    }
