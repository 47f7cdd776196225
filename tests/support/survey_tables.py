"""Tiny DESI coadds, MWS catalogues and APOGEE tables built in memory."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.spectra import ArmSpectra, CoaddSpectra

N_PIXELS = {"B": 12, "R": 10, "Z": 14}
START = {"B": 3600.0, "R": 5760.0, "Z": 7520.0}


def make_coadd(rows: list[dict], survey="main", program="bright", healpix=1234, level=None) -> CoaddSpectra:
    """A coadd with one spectrum per ``rows`` entry (FIBERMAP values; defaults filled in).

    Flux of spectrum i is ``level[i]`` (default 10 * (i + 1)) with ivar 1, so median S/N =
    level exactly."""
    defaults = {
        "COADD_FIBERSTATUS": 0, "OBJTYPE": "TGT", "MWS_TARGET": 1, "PMRA": 0.0, "PMDEC": 0.0,
        "REF_EPOCH": 2015.5, "REF_ID": -1, "REF_CAT": "G2", "GAIA_PHOT_G_MEAN_MAG": 14.0,
    }
    fibermap = pd.DataFrame([{**defaults, **row} for row in rows])
    fibermap["TARGETID"] = fibermap["TARGETID"].astype(np.int64)
    fibermap["REF_ID"] = fibermap["REF_ID"].astype(np.int64)
    n = len(rows)
    level = np.asarray(level if level is not None else 10.0 * (np.arange(n) + 1), dtype=np.float32)
    arms = {}
    for arm, n_pix in N_PIXELS.items():
        flux = np.repeat(level[:, None], n_pix, axis=1).astype(np.float32)
        arms[arm] = ArmSpectra(
            wavelength=START[arm] + 0.8 * np.arange(n_pix),
            flux=flux,
            ivar=np.ones_like(flux),
            mask=np.zeros(flux.shape, dtype=np.int32),
            resolution=np.ones((n, 11, n_pix), dtype=np.float32),
        )
    header = {"SURVEY": survey, "PROGRAM": program, "HPXPIXEL": healpix, "SPECPROD": "mock", "MOCK": True}
    scores = pd.DataFrame({"TARGETID": fibermap["TARGETID"], "TSNR2_LRG": np.ones(n, dtype=np.float32)})
    return CoaddSpectra(arms=arms, fibermap=fibermap, header=header, scores=scores)


def make_mws(rows: list[dict]) -> dict[str, pd.DataFrame]:
    """An MWS catalogue ``{"RVTAB", "FIBERMAP", "GAIA"}``, row-matched; ``rows`` give
    TARGETID, SURVEY, PROGRAM, SOURCE_ID and any RVTAB value."""
    defaults = {"VRAD": 12.5, "VRAD_ERR": 0.5, "RVS_WARN": 0, "SUCCESS": True, "SN_B": 20.0,
                "SN_R": 30.0, "SN_Z": 40.0, "PRIMARY": True, "SOURCE_ID": 0}
    full = pd.DataFrame([{**defaults, **row} for row in rows])
    full["TARGETID"] = full["TARGETID"].astype(np.int64)
    full["SOURCE_ID"] = full["SOURCE_ID"].astype(np.int64)
    rvtab = full.drop(columns=["SOURCE_ID"])
    return {
        "RVTAB": rvtab,
        "FIBERMAP": rvtab[["TARGETID"]].copy(),
        "GAIA": full[["SOURCE_ID"]].copy(),
    }


def make_apogee(rows: list[dict]) -> pd.DataFrame:
    """An allStar-like table; every label column present, defaults of a clean giant."""
    from desi_abundances.constants import APOGEE_DR17_ELEMENTS

    defaults = {
        "TELESCOPE": "apo25m", "FIELD": "f", "GAIAEDR3_SOURCE_ID": 0, "GAIAEDR3_PMRA": 0.0,
        "GAIAEDR3_PMDEC": 0.0, "GAIAEDR3_PARALLAX": 1.0, "SNR": 150.0, "STARFLAG": 0,
        "ASPCAPFLAG": 0, "EXTRATARG": 0, "VHELIO_AVG": 12.0, "VSCATTER": 0.2,
        "TEFF": 4800.0, "TEFF_ERR": 50.0, "LOGG": 2.5, "LOGG_ERR": 0.05,
        "FE_H": -0.3, "FE_H_ERR": 0.01, "FE_H_FLAG": 0,
    }
    for element in APOGEE_DR17_ELEMENTS:
        defaults.update({f"{element}_FE": 0.1, f"{element}_FE_ERR": 0.03, f"{element}_FE_FLAG": 0})
    table = pd.DataFrame([{**defaults, **row} for row in rows])
    table["GAIAEDR3_SOURCE_ID"] = table["GAIAEDR3_SOURCE_ID"].astype(np.int64)
    return table


# The APOGEE quality cuts of the crossmatch tests (a copy of conf/base/parameters_crossmatch.yml's).
APOGEE_CUTS = {
    "drop_duplicates": True,
    "aspcapflag_bad_bits": [19, 23],
    "starflag_bad_bits": [0, 3, 4],
    "snr_min": 70,
    "require_finite": ["TEFF", "LOGG", "FE_H"],
    "teff_range_k": [3500, 7000],
    "logg_range": None,
    "vscatter_max_kms": 1.0,
}
