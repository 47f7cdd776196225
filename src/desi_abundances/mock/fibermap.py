"""FIBERMAP and EXP_FIBERMAP tables of one mock coadd file (DESI column names and dtypes)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.desi.bitmasks import DESI_TARGET_BITS, MWS_TARGET_BITS
from desi_abundances.mock.programmes import DESI_REF_EPOCH


def fibermap(obs: pd.DataFrame, stars: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """FIBERMAP rows (DESI column names and dtypes) of the spectra of one file."""
    n = len(obs)
    star = stars.set_index("star_id").reindex(obs["star_id"].to_numpy())
    is_star = obs["star_id"].to_numpy() >= 0
    ra = np.where(is_star, star["ra_desi"].to_numpy(), 0.0)
    dec = np.where(is_star, star["dec_desi"].to_numpy(), 0.0)
    if (~is_star).any():  # sky fibres: random blank-sky positions in the pixel
        ras = stars.loc[stars["healpix"] == obs["HEALPIX"].iloc[0], "ra_desi"]
        decs = stars.loc[stars["healpix"] == obs["HEALPIX"].iloc[0], "dec_desi"]
        pick = rng.integers(0, max(len(ras), 1), (~is_star).sum())
        ra[~is_star] = ras.to_numpy()[pick] + rng.normal(0, 0.01, pick.size)
        dec[~is_star] = decs.to_numpy()[pick] + rng.normal(0, 0.01, pick.size)
    g = star["g_mag"].to_numpy()
    bp_rp = star["bp_rp"].to_numpy()
    g_obs = g + rng.normal(0, 0.003, n)
    bp = g_obs + 0.45 * bp_rp - 0.05 + rng.normal(0, 0.01, n)
    rp = bp - bp_rp
    # Legacy Surveys fluxes (nanomaggies, AB): rough colour transformations
    r_mag = g_obs + 0.1 + 0.2 * bp_rp
    g_ls = r_mag + 0.9 * bp_rp - 0.2
    z_ls = r_mag - 0.6 * bp_rp + 0.05
    programme = obs["PROGRAM"].to_numpy()
    mws = np.where(programme == "backup", 1 << MWS_TARGET_BITS["BACKUP_BRIGHT"],
                   np.where(bp_rp < 0.9, 1 << MWS_TARGET_BITS["MWS_MAIN_BLUE"],
                            1 << MWS_TARGET_BITS["MWS_MAIN_RED"]))
    mws = np.where(is_star, mws, 0).astype(np.int64)
    frame = pd.DataFrame({
        "TARGETID": obs["TARGETID"].to_numpy().astype(np.int64),
        "COADD_FIBERSTATUS": obs["FIBERSTATUS"].to_numpy().astype(np.int32),
        "TARGET_RA": ra.astype(np.float64),
        "TARGET_DEC": dec.astype(np.float64),
        "PMRA": np.where(is_star, star["pmra"].to_numpy(), 0.0).astype(np.float32),
        "PMDEC": np.where(is_star, star["pmdec"].to_numpy(), 0.0).astype(np.float32),
        "REF_EPOCH": np.where(is_star, DESI_REF_EPOCH, 0.0).astype(np.float32),
        "OBJTYPE": obs["OBJTYPE"].to_numpy(),
        "EBV": np.where(is_star, star["ebv"].to_numpy(), 0.02).astype(np.float32),
        "FLUX_G": np.where(is_star, 10 ** (-0.4 * (g_ls - 22.5)), 0.0).astype(np.float32),
        "FLUX_R": np.where(is_star, 10 ** (-0.4 * (r_mag - 22.5)), 0.0).astype(np.float32),
        "FLUX_Z": np.where(is_star, 10 ** (-0.4 * (z_ls - 22.5)), 0.0).astype(np.float32),
        "REF_ID": _integer_column(stars, "gaia_dr2_id", obs["star_id"].to_numpy()),
        "REF_CAT": np.where(is_star, "G2", ""),
        "GAIA_PHOT_G_MEAN_MAG": np.where(is_star, g_obs, 0.0).astype(np.float32),
        "GAIA_PHOT_BP_MEAN_MAG": np.where(is_star, bp, 0.0).astype(np.float32),
        "GAIA_PHOT_RP_MEAN_MAG": np.where(is_star, rp, 0.0).astype(np.float32),
        "PARALLAX": np.where(is_star, star["parallax_mas"].to_numpy()
                             + rng.normal(0, 0.05, n), 0.0).astype(np.float32),
        "DESI_TARGET": np.where(is_star, 1 << DESI_TARGET_BITS["MWS_ANY"], 0).astype(np.int64),
        "BGS_TARGET": np.zeros(n, dtype=np.int64),
        "MWS_TARGET": mws,
        "SCND_TARGET": np.zeros(n, dtype=np.int64),
        "COADD_NUMEXP": obs["NUMEXP"].to_numpy().astype(np.int16),
        "COADD_EXPTIME": obs["EXPTIME"].to_numpy().astype(np.float32),
        "HEALPIX": obs["HEALPIX"].to_numpy().astype(np.int32),
    })
    return frame


def _integer_column(stars: pd.DataFrame, column: str, star_ids: np.ndarray) -> np.ndarray:
    """int64 ``column`` of the stars ``star_ids`` (0 where star_id is -1), without the
    float round trip of a reindex (Gaia ids do not fit in float64)."""
    position = pd.Series(np.arange(len(stars)), index=stars["star_id"].to_numpy())
    rows = position.reindex(star_ids).fillna(-1).to_numpy().astype(np.int64)
    values = stars[column].to_numpy().astype(np.int64)[np.maximum(rows, 0)]
    return np.where(rows >= 0, values, 0).astype(np.int64)


def exp_fibermap(obs: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """EXP_FIBERMAP: one row per exposure of each spectrum (NUMEXP rows)."""
    reps = obs["NUMEXP"].to_numpy().astype(int)
    idx = np.repeat(np.arange(len(obs)), reps)
    exp_number = np.concatenate([np.arange(k) for k in reps]) if len(reps) else np.array([], int)
    night = 20210514 + exp_number * 3
    return pd.DataFrame({
        "TARGETID": obs["TARGETID"].to_numpy()[idx].astype(np.int64),
        "NIGHT": night.astype(np.int32),
        "EXPID": (90000 + exp_number * 17 + rng.integers(0, 10, idx.size)).astype(np.int32),
        "MJD": (59348.0 + exp_number * 3 + rng.uniform(0.1, 0.4, idx.size)).astype(np.float64),
        "TILEID": (1000 + obs["HEALPIX"].to_numpy()[idx] % 5000).astype(np.int32),
        "EXPTIME": (obs["EXPTIME"].to_numpy()[idx] / reps[idx]).astype(np.float64),
        "FIBER": obs["FIBER"].to_numpy()[idx].astype(np.int32),
        "FIBERSTATUS": obs["FIBERSTATUS"].to_numpy()[idx].astype(np.int32),
    })
