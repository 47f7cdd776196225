"""The stellar halo from the catalogue: one clean row per star, Galactocentric velocities from
Gaia astrometry and DESI radial velocities, a kinematic (Toomre) halo selection, and the split
of the [alpha/Fe]-[Fe/H] plane into its high- and low-alpha sequences.

Units: deg, mas, mas/yr, km/s, kpc, dex.
"""
from __future__ import annotations

import logging

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import Galactocentric, SkyCoord

logger = logging.getLogger(__name__)

SUN_PECULIAR_V_KMS = 12.24
"""The Sun's velocity ahead of the local standard of rest (km/s; Schoenrich et al. 2010)."""

HALO_MIN_SPEED_KMS = 220.0
"""Halo stars: |v - v_LSR| above this (km/s), as in e.g. Bonaca et al. (2017); Nissen &
Schuster (2010) use 180 km/s."""

SEQUENCE_SPLIT: tuple[tuple[float, ...], tuple[float, ...]] = ((-1.6, -1.0, -0.4), (0.285, 0.18, 0.08))
"""The line between the halo's high- and low-alpha sequences in [Mg/Fe] vs [Fe/H] (dex):
[Fe/H] knots and [Mg/Fe] there, linearly interpolated and constant outside; the mid-line of
the mock's two sequences (``stellar.population.alpha_sequence``). Below [Fe/H] ~ -1.6 the two
sequences merge and the split carries no information."""


def galactocentric_frame() -> Galactocentric:
    """Astropy's Galactocentric frame with its v4.0 parameters written out (R0 = 8.122 kpc,
    z_sun = 20.8 pc, v_sun = (12.9, 245.6, 7.78) km/s), so results do not follow astropy's
    default-parameter state."""
    return Galactocentric(galcen_distance=8.122 * u.kpc, z_sun=20.8 * u.pc,
                          galcen_v_sun=[12.9, 245.6, 7.78] * (u.km / u.s))


def lsr_speed_kms(frame: Galactocentric | None = None) -> float:
    """Circular speed of the local standard of rest (km/s): the Sun's V less its peculiar V."""
    frame = frame or galactocentric_frame()
    return float(frame.galcen_v_sun.y.to_value(u.km / u.s)) - SUN_PECULIAR_V_KMS


def one_row_per_star(vac: pd.DataFrame, min_snr: float | None = None) -> pd.DataFrame:
    """The documented selection (docs/vac_datamodel.md): the PRIMARY row of each TARGETID
    with FLAG == 0 (which already requires SNR >= MINSNR and a trusted VRAD); ``min_snr``
    tightens the S/N cut further."""
    keep = vac["PRIMARY"].to_numpy(dtype=bool) & (vac["FLAG"].to_numpy() == 0)
    if min_snr is not None:
        keep &= vac["SNR"].to_numpy() >= min_snr
    return vac[keep].reset_index(drop=True)


def gaia_by_targetid(mws: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The MWS catalogue's GAIA extension (row-matched to RVTAB) keyed by TARGETID, one row
    per target (a star observed twice has the same Gaia values twice)."""
    gaia = mws["GAIA"].reset_index(drop=True).copy()
    gaia.insert(0, "TARGETID", mws["RVTAB"]["TARGETID"].to_numpy())
    return gaia.drop_duplicates("TARGETID").reset_index(drop=True)


def usable_astrometry(gaia: pd.DataFrame, min_parallax_over_error: float = 5.0) -> np.ndarray:
    """Rows whose parallax gives a distance: finite and positive, and, where the table has
    PARALLAX_ERROR (real Gaia, and the mock since issue 16), parallax/error above the cut."""
    parallax = gaia["PARALLAX"].to_numpy(dtype=float)
    good = np.isfinite(parallax) & (parallax > 0)
    good &= np.isfinite(gaia["PMRA"].to_numpy(dtype=float)) & np.isfinite(gaia["PMDEC"].to_numpy(dtype=float))
    if "PARALLAX_ERROR" in gaia.columns:
        with np.errstate(divide="ignore", invalid="ignore"):
            good &= parallax / gaia["PARALLAX_ERROR"].to_numpy(dtype=float) > min_parallax_over_error
    return good


def galactocentric_velocities(ra: np.ndarray, dec: np.ndarray, parallax_mas: np.ndarray,
                              pmra: np.ndarray, pmdec: np.ndarray, vrad_kms: np.ndarray,
                              frame: Galactocentric | None = None) -> pd.DataFrame:
    """Galactocentric positions (kpc) and cylindrical velocities (km/s) of stars from ICRS
    positions (deg), parallaxes (mas; distance = 1/parallax), proper motions (mas/yr, pmra
    includes cos dec) and radial velocities (km/s).

    Columns: R_kpc, z_kpc, v_R, v_phi (positive in the sense of Galactic rotation), v_z and
    the Toomre-diagram axes toomre_v = v_phi - v_LSR and toomre_uw = sqrt(v_R^2 + v_z^2),
    and speed_lsr = |v - v_LSR|.
    """
    frame = frame or galactocentric_frame()
    coords = SkyCoord(ra=np.asarray(ra, float) * u.deg, dec=np.asarray(dec, float) * u.deg,
                      distance=(1.0 / np.asarray(parallax_mas, float)) * u.kpc,
                      pm_ra_cosdec=np.asarray(pmra, float) * (u.mas / u.yr),
                      pm_dec=np.asarray(pmdec, float) * (u.mas / u.yr),
                      radial_velocity=np.asarray(vrad_kms, float) * (u.km / u.s), frame="icrs")
    gc = coords.transform_to(frame)
    x, y, z = (getattr(gc, k).to_value(u.kpc) for k in ("x", "y", "z"))
    vx, vy, vz = (getattr(gc, k).to_value(u.km / u.s) for k in ("v_x", "v_y", "v_z"))
    radius = np.hypot(x, y)
    v_r = (x * vx + y * vy) / radius
    v_phi = (y * vx - x * vy) / radius  # astropy's frame is right-handed: the disk has L_z < 0
    toomre_v = v_phi - lsr_speed_kms(frame)
    toomre_uw = np.hypot(v_r, vz)
    return pd.DataFrame({"R_kpc": radius, "z_kpc": z, "v_R": v_r, "v_phi": v_phi, "v_z": vz,
                         "toomre_v": toomre_v, "toomre_uw": toomre_uw,
                         "speed_lsr": np.hypot(toomre_v, toomre_uw)})


def kinematic_halo(velocities: pd.DataFrame, min_speed_kms: float = HALO_MIN_SPEED_KMS) -> np.ndarray:
    """Halo members by kinematics: speed relative to the LSR above ``min_speed_kms``."""
    return velocities["speed_lsr"].to_numpy() > min_speed_kms


def sequence_split_line(fe_h: np.ndarray,
                        split: tuple[tuple[float, ...], tuple[float, ...]] = SEQUENCE_SPLIT) -> np.ndarray:
    """[Mg/Fe] (dex) of the line between the high- and low-alpha sequences at ``fe_h``."""
    knots, values = split
    return np.interp(np.asarray(fe_h, float), knots, values)


def alpha_sequence_of(fe_h: np.ndarray, mg_fe: np.ndarray,
                      split: tuple[tuple[float, ...], tuple[float, ...]] = SEQUENCE_SPLIT) -> np.ndarray:
    """"high" or "low" for each star: above or below :func:`sequence_split_line`; "" where a
    value is not finite."""
    fe_h = np.asarray(fe_h, float)
    mg_fe = np.asarray(mg_fe, float)
    out = np.where(mg_fe >= sequence_split_line(fe_h, split), "high", "low").astype(object)
    out[~(np.isfinite(fe_h) & np.isfinite(mg_fe))] = ""
    return out


def precise_counts(stars: pd.DataFrame, labels: list[str], max_error_dex: float = 0.1) -> pd.Series:
    """Per label (upper-case VAC name, e.g. MG_FE), how many stars have <LABEL>_ERR below
    ``max_error_dex``; labels without an _ERR column are left out. Sorted, most first."""
    counts = {label: int((stars[f"{label}_ERR"].to_numpy(dtype=float) < max_error_dex).sum())
              for label in labels if f"{label}_ERR" in stars.columns}
    return pd.Series(counts, name=f"n_err_below_{max_error_dex:g}_dex").sort_values(ascending=False)


def recovery_and_contamination(selected: np.ndarray, true_member: np.ndarray) -> dict[str, float]:
    """Completeness (fraction of true members selected) and contamination (fraction of the
    selected that are not true members); NaN where undefined."""
    selected = np.asarray(selected, bool)
    true_member = np.asarray(true_member, bool)
    n_true, n_sel = int(true_member.sum()), int(selected.sum())
    both = int((selected & true_member).sum())
    return {"n_true": n_true, "n_selected": n_sel, "n_true_selected": both,
            "recovered_fraction": both / n_true if n_true else float("nan"),
            "contamination": (n_sel - both) / n_sel if n_sel else float("nan")}
