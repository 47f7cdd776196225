"""The mock APOGEE DR17-style allStar: labels with realistic errors, NaN and flags."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.constants import APOGEE_DR17_ELEMENTS, ASPCAPFLAG_STAR_BAD_BIT, EXTRATARG_DUPLICATE_BIT

# APOGEE DR17-like per-element uncertainty at SNR = 100 (dex) and fraction missing/flagged.
APOGEE_ELEMENT_ERRORS: dict[str, float] = {
    "C": 0.02, "CI": 0.04, "N": 0.03, "O": 0.02, "NA": 0.07, "MG": 0.015, "AL": 0.025,
    "SI": 0.015, "P": 0.12, "S": 0.035, "K": 0.03, "CA": 0.018, "TI": 0.035, "TIII": 0.07,
    "V": 0.07, "CR": 0.035, "MN": 0.02, "CO": 0.06, "NI": 0.018, "CU": 0.09, "CE": 0.06,
}
APOGEE_ELEMENT_MISSING: dict[str, float] = {
    "C": 0.03, "CI": 0.12, "N": 0.05, "O": 0.04, "NA": 0.20, "MG": 0.02, "AL": 0.04,
    "SI": 0.02, "P": 0.60, "S": 0.10, "K": 0.08, "CA": 0.03, "TI": 0.08, "TIII": 0.35,
    "V": 0.30, "CR": 0.08, "MN": 0.04, "CO": 0.30, "NI": 0.03, "CU": 0.50, "CE": 0.30,
}
"""Fraction of stars with the element NaN (and its flag set) in the mock allStar; P, Cu,
V, Co, Ti II, Ce, Na are poorly measured, as in DR17."""


def apogee_allstar(stars: pd.DataFrame, config: dict[str, Any]) -> pd.DataFrame:
    """APOGEE DR17-style allStar rows of the APOGEE stars (plus lower-S/N DUPLICATE rows):
    labels with realistic errors, NaN and flags where DR17 has them."""
    rng = np.random.default_rng(int(config["seed"]) + 4)
    ap = stars[stars["in_apogee"]].reset_index(drop=True)
    dup = rng.random(len(ap)) < float(config.get("apogee_duplicate_fraction", 0.04))
    ap = pd.concat([ap.assign(_dup=False), ap[dup].assign(_dup=True)], ignore_index=True)
    n = len(ap)
    h_mag = ap["g_mag"].to_numpy() - (0.3 + 1.4 * ap["bp_rp"].to_numpy())
    snr = np.clip(240.0 * 10 ** (-0.2 * (h_mag - 10.5)) * rng.lognormal(0, 0.35, n), 10.0, 1500.0)
    snr = np.where(ap["_dup"], snr * rng.uniform(0.2, 0.7, n), snr)
    scale = np.clip(100.0 / snr, 0.5, 5.0)
    teff = ap["teff"].to_numpy()
    logg = ap["logg"].to_numpy()
    star_bad = (teff < 3550) | (teff > 7000) | (snr < 30) | (rng.random(n) < 0.02)
    teff_err = 10.0 + 8.0 * scale + 0.02 * np.abs(teff - 4800) * scale
    logg_err = 0.015 + 0.012 * scale
    feh_err = 0.006 + 0.006 * scale
    table: dict[str, Any] = {
        "APOGEE_ID": ap["APOGEE_ID"].fillna("").to_numpy(),
        "TELESCOPE": np.where(ap["dec_2000"] < -20, "lco25m", "apo25m"),
        "FIELD": [f"{int(h)}" + ("_dup" if d else "") for h, d in zip(ap["healpix"], ap["_dup"])],
        "RA": ap["ra_2000"].to_numpy(), "DEC": ap["dec_2000"].to_numpy(),
        "GAIAEDR3_SOURCE_ID": np.where(rng.random(n) < 0.03, 0, ap["gaia_edr3_id"]).astype(np.int64),
        "GAIAEDR3_PMRA": (ap["pmra"].to_numpy() + rng.normal(0, 0.03, n)).astype(np.float32),
        "GAIAEDR3_PMDEC": (ap["pmdec"].to_numpy() + rng.normal(0, 0.03, n)).astype(np.float32),
        "GAIAEDR3_PARALLAX": (ap["parallax_mas"].to_numpy() + rng.normal(0, 0.03, n)).astype(np.float32),
        "SNR": snr.astype(np.float32),
        "STARFLAG": (np.where(rng.random(n) < 0.3, 1 << 9, 0)
                     | np.where(rng.random(n) < 0.15, 1 << 10, 0)
                     | np.where(rng.random(n) < 0.02, 1 << 3, 0)).astype(np.int64),
        "ASPCAPFLAG": np.where(star_bad, 1 << ASPCAPFLAG_STAR_BAD_BIT, 0).astype(np.int64),
        "EXTRATARG": np.where(ap["_dup"], 1 << EXTRATARG_DUPLICATE_BIT, 0).astype(np.int32),
        "TEFF": (teff + rng.normal(0, 1, n) * teff_err).astype(np.float32),
        "TEFF_ERR": teff_err.astype(np.float32),
        "LOGG": (logg + rng.normal(0, 1, n) * logg_err).astype(np.float32),
        "LOGG_ERR": logg_err.astype(np.float32),
    }
    fe_h = ap["fe_h"].to_numpy() + rng.normal(0, 1, n) * feh_err
    table["M_H"] = (fe_h + 0.02 + rng.normal(0, 0.01, n)).astype(np.float32)
    table["M_H_ERR"] = (feh_err * 1.1).astype(np.float32)
    table["ALPHA_M"] = (ap["alpha_m"].to_numpy() + rng.normal(0, 1, n) * 0.01 * scale).astype(np.float32)
    table["ALPHA_M_ERR"] = (0.01 * scale).astype(np.float32)
    table["VMICRO"] = (ap["vmic"].to_numpy() + rng.normal(0, 0.05, n)).astype(np.float32)
    binary = ap["binary"].to_numpy()
    table["VSCATTER"] = np.where(binary, rng.uniform(1.0, 12.0, n),
                                 np.abs(rng.normal(0, 0.25, n))).astype(np.float32)
    table["VHELIO_AVG"] = (ap["vrad_kms"].to_numpy() + rng.normal(0, 0.1, n)).astype(np.float32)
    table["FE_H"] = fe_h.astype(np.float32)
    table["FE_H_ERR"] = feh_err.astype(np.float32)
    table["FE_H_FLAG"] = np.where(star_bad, 1, 0).astype(np.int32)
    warm = teff > 5500
    for element in APOGEE_DR17_ELEMENTS:
        truth = ap[f"{element.lower()}_fe"].to_numpy()
        err = APOGEE_ELEMENT_ERRORS[element] * scale * np.where(warm, 1.5, 1.0)
        value = truth + rng.normal(0, 1, n) * err
        p_missing = APOGEE_ELEMENT_MISSING[element] * np.where(warm & np.isin(element, ["C", "CI", "N", "O"]), 4.0, 1.0)
        missing = star_bad | (rng.random(n) < np.minimum(p_missing, 0.95))
        flagged_only = (~missing) & (rng.random(n) < 0.01)
        table[f"{element}_FE"] = np.where(missing, np.nan, value).astype(np.float32)
        table[f"{element}_FE_ERR"] = np.where(missing, np.nan, err).astype(np.float32)
        table[f"{element}_FE_FLAG"] = np.where(missing | flagged_only, 1, 0).astype(np.int32)
    frame = pd.DataFrame(table)
    order = rng.permutation(n)  # allStar is not sorted like DESI
    return frame.iloc[order].reset_index(drop=True)
