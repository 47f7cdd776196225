"""The mock MWS value-added catalogue (RVTAB, FIBERMAP, GAIA), measured on the written coadds."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.mock.coadds import masked_median
from desi_abundances.spectra import CoaddSpectra, good_pixels


def spectrum_snr(coadds: dict[str, Callable[[], CoaddSpectra]]) -> pd.DataFrame:
    """The FIBERMAP rows of every spectrum in the coadd files with their median S/N per
    pixel per arm (SN_B, SN_R, SN_Z) measured on the files, and the partition id."""
    frames = []
    for pid, load in sorted(coadds.items()):
        coadd = load() if callable(load) else load
        frame = coadd.fibermap.copy()
        frame["partition"] = pid
        for arm, data in coadd.arms.items():
            good = good_pixels(data.flux, data.ivar, data.mask)
            frame[f"SN_{arm}"] = masked_median(data.flux * np.sqrt(np.maximum(data.ivar, 0)), good)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def mws_catalogue(observations: pd.DataFrame, stars: pd.DataFrame, snr: pd.DataFrame,
                  config: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The MWS value-added catalogue (RVTAB, FIBERMAP, GAIA; row-matched, one row per
    stellar spectrum): noisy RVSpecFit-like estimates of VRAD, TEFF, LOGG, FEH, ALPHAFE.

    ``snr`` is :func:`spectrum_snr` of the written coadds (FIBERMAP rows and S/N)."""
    rng = np.random.default_rng(int(config["seed"]) + 2)
    measured = snr[["partition", "TARGETID", "SN_B", "SN_R", "SN_Z"]]
    obs = observations[observations["OBJTYPE"] == "TGT"].merge(
        measured, on=["partition", "TARGETID"], how="left", validate="one_to_one")
    star = stars.set_index("star_id").loc[obs["star_id"].to_numpy()]
    n = len(obs)
    sn = obs["SN_R"].to_numpy()
    rel = 1.0 / np.sqrt(np.maximum(sn, 1.0))
    binary_shift = np.where(star["binary"].to_numpy(), rng.normal(0.0, 15.0, n), 0.0)
    vrad_err = 0.8 + 25.0 * rel**2
    vrad = star["vrad_kms"].to_numpy() + binary_shift + rng.normal(0, 1, n) * vrad_err
    warn = (sn < 3.0) | (rng.random(n) < 0.01)
    success = ~((sn < 1.5) | (rng.random(n) < 0.005))
    teff_err = 40.0 + 600.0 * rel**2
    logg_err = 0.05 + 1.0 * rel**2
    feh_err = 0.03 + 0.8 * rel**2
    alpha_err = 0.03 + 0.5 * rel**2
    # RVSpecFit-like systematics: a small Teff/[Fe/H]-dependent bias
    feh_true = star["fe_h"].to_numpy()
    rvtab = pd.DataFrame({
        "VRAD": vrad.astype(np.float64),
        "VRAD_ERR": vrad_err.astype(np.float64),
        "TEFF": (star["teff"].to_numpy() + rng.normal(0, 1, n) * teff_err + 30.0).astype(np.float64),
        "TEFF_ERR": teff_err, "LOGG": (star["logg"].to_numpy() + rng.normal(0, 1, n) * logg_err),
        "LOGG_ERR": logg_err,
        "FEH": feh_true + rng.normal(0, 1, n) * feh_err - 0.05 * (feh_true < -1.5),
        "FEH_ERR": feh_err,
        "ALPHAFE": star["alpha_m"].to_numpy() + rng.normal(0, 1, n) * alpha_err,
        "ALPHAFE_ERR": alpha_err,
        "RVS_WARN": np.where(warn, 4, 0).astype(np.int64),
        "SN_B": obs["SN_B"].to_numpy().astype(np.float64),
        "SN_R": obs["SN_R"].to_numpy().astype(np.float64),
        "SN_Z": obs["SN_Z"].to_numpy().astype(np.float64),
        "SUCCESS": success,
        "TARGETID": obs["TARGETID"].to_numpy().astype(np.int64),
        "HEALPIX": obs["HEALPIX"].to_numpy().astype(np.int64),
        "SURVEY": obs["SURVEY"].to_numpy(),
        "PROGRAM": obs["PROGRAM"].to_numpy(),
        "TARGET_RA": star["ra_desi"].to_numpy(),
        "TARGET_DEC": star["dec_desi"].to_numpy(),
    })
    for col in ("TEFF_ERR", "LOGG_ERR", "FEH", "FEH_ERR", "ALPHAFE", "ALPHAFE_ERR", "LOGG"):
        rvtab[col] = rvtab[col].astype(np.float64)
    # PRIMARY: the highest-S/N spectrum of each TARGETID
    best = rvtab.assign(_row=np.arange(n)).sort_values("SN_R", ascending=False) \
        .drop_duplicates("TARGETID")["_row"].to_numpy()
    primary = np.zeros(n, dtype=bool)
    primary[best] = True
    rvtab["PRIMARY"] = primary
    # the released dtype (float32): exact, the medians are float32; PRIMARY was chosen on the same values
    for col in ("SN_B", "SN_R", "SN_Z"):
        rvtab[col] = rvtab[col].astype(np.float32)
    # FIBERMAP: the coadds' own rows, in RVTAB order
    fibermap_columns = [c for c in snr.columns if c not in ("partition", "SN_B", "SN_R", "SN_Z")]
    fmap = obs[["partition", "TARGETID"]].merge(snr, on=["partition", "TARGETID"], how="left",
                                                validate="one_to_one")[fibermap_columns]
    gaia = pd.DataFrame({
        "SOURCE_ID": star["gaia_edr3_id"].to_numpy().astype(np.int64),
        "RA": star["ra_2016"].to_numpy(), "DEC": star["dec_2016"].to_numpy(),
        "PARALLAX": (star["parallax_mas"].to_numpy() + rng.normal(0, 0.03, n)),
        "PMRA": star["pmra"].to_numpy() + rng.normal(0, 0.03, n),
        "PMDEC": star["pmdec"].to_numpy() + rng.normal(0, 0.03, n),
        "PHOT_G_MEAN_MAG": star["g_mag"].to_numpy().astype(np.float32),
    })
    # the errors of the noise above, as Gaia's columns (a parallax/error cut needs them)
    for column in ("PARALLAX_ERROR", "PMRA_ERROR", "PMDEC_ERROR"):
        gaia[column] = np.full(n, 0.03, dtype=np.float32)
    return {"RVTAB": rvtab, "FIBERMAP": fmap, "GAIA": gaia}
