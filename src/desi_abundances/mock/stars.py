"""The mock survey's stars: population, magnitudes, positions in the healpix pixels,
kinematics, epochs, Gaia/2MASS identifiers and the APOGEE selection (one row per star)."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.desi.astrometry import propagate_positions
from desi_abundances.desi.healpix import DESI_NSIDE, ang2pix_nest
from desi_abundances.mock.healpix import gaia_source_id
from desi_abundances.mock.programmes import (
    APOGEE_EPOCH,
    DESI_REF_EPOCH,
    DR3_EPOCH,
    healpix_centres,
    stage_mix,
    survey_programmes,
)
from desi_abundances.spectral_models.registry import build as build_spectral_model
from desi_abundances.stellar.population import sample_population

logger = logging.getLogger(__name__)


def sample_magnitudes(n: int, g_range: tuple[float, float], rng: np.random.Generator,
                      slope: float = 0.25) -> np.ndarray:
    """Gaia G drawn from dN/dG ~ 10^(slope G) within ``g_range`` (counts rise to faint)."""
    lo, hi = g_range
    u = rng.random(n)
    a = slope * np.log(10.0)
    return np.log(np.exp(a * lo) + u * (np.exp(a * hi) - np.exp(a * lo))) / a


def absolute_g(teff: np.ndarray, logg: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Absolute Gaia G (mag) from L = M (T/Tsun)^4 / (g/gsun) and a simple bolometric
    correction BC_G(Teff)."""
    log_l = np.log10(mass) + 4 * np.log10(teff / 5772.0) - (logg - 4.438)
    bc = np.where(teff < 5800, 0.06 - 4.5e-7 * (teff - 5800) ** 2, 0.06 - 1.0e-7 * (teff - 5800) ** 2)
    return 4.74 - 2.5 * log_l + bc


def bp_rp_colour(teff: np.ndarray, ebv: np.ndarray) -> np.ndarray:
    """Gaia BP-RP (mag): 0.8 (5800/Teff)^1.9 plus reddening 1.34 E(B-V)."""
    return 0.8 * (5800.0 / teff) ** 1.9 + 1.34 * ebv


def positions_in_pixel(hpx: int, centre: tuple[float, float], n: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform positions (deg) inside nested nside-64 pixel ``hpx`` (rejection)."""
    ra_c, dec_c = centre
    ras, decs = [], []
    got = 0
    while got < n:
        m = max(4 * (n - got), 64)
        dec = rng.uniform(dec_c - 1.2, dec_c + 1.2, m)
        ra = ra_c + rng.uniform(-1.2, 1.2, m) / np.cos(np.radians(dec))
        keep = ang2pix_nest(DESI_NSIDE, ra, dec) == hpx
        ras.append(np.mod(ra[keep], 360.0))
        decs.append(dec[keep])
        got += int(keep.sum())
    return np.concatenate(ras)[:n], np.concatenate(decs)[:n]


def clip_to_spectral_model(stars: pd.DataFrame, config: dict[str, Any]) -> pd.DataFrame:
    """The stars' labels clipped to the range where the configured spectral model is valid
    (an emulator's training range: it would clip them itself when making the spectrum), so
    the truth, and the APOGEE labels drawn from it, are the labels that made each spectrum.
    Models without ``label_names``/``label_min``/``label_max`` (the analytic one) leave the
    stars as they are."""
    model = build_spectral_model(config.get("spectral_model", "analytic"),
                                 **(config.get("spectral_model_args") or {}))
    names = getattr(model, "label_names", None)
    low, high = getattr(model, "label_min", None), getattr(model, "label_max", None)
    if names is None or low is None or high is None:
        return stars
    stars = stars.copy()
    clipped = np.zeros(len(stars), dtype=bool)
    for name, lo, hi in zip(names, np.asarray(low, float), np.asarray(high, float)):
        if name in stars.columns:
            values = stars[name].to_numpy(dtype=np.float64)
            inside = np.clip(values, lo, hi)
            clipped |= inside != values
            stars[name] = inside
    if clipped.any():
        logger.info("mock survey: labels of %d of %d stars clipped to the spectral model's "
                    "range (its library's)", int(clipped.sum()), len(stars))
    return stars


def simulate_stars(config: dict[str, Any]) -> pd.DataFrame:
    """Every star of the mock: DESI targets (split between programmes and healpix pixels)
    and APOGEE-only stars. One row per star; positions at the Gaia DR3 epoch 2016.0 are
    propagated to 2015.5 (DESI) and 2000.0 (APOGEE).
    """
    rng = np.random.default_rng(int(config["seed"]))
    n_desi = int(config["n_stars"])
    centres = healpix_centres(config)
    pixels = [int(ang2pix_nest(DESI_NSIDE, ra, dec)[0]) for ra, dec in centres]
    if len(set(pixels)) != len(pixels):
        raise ValueError(f"two healpix_centres fall in the same nside-64 pixel: {pixels}")
    frames = []
    programmes = survey_programmes(config)
    fractions = np.array([p.fraction for p in programmes])
    counts = rng.multinomial(n_desi, fractions / fractions.sum())
    population_config = config.get("population") or {}
    for prog, count in zip(programmes, counts):
        pop = sample_population(int(count), rng, {**population_config,
                                                  "stages": stage_mix(prog.giant_fraction)})
        pop["programme"] = prog.name
        pop["g_mag_target"] = sample_magnitudes(int(count), prog.g_range, rng, prog.g_slope)
        frames.append(pop)
    stars = pd.concat(frames, ignore_index=True)
    stars["in_desi"] = True

    n_apogee_only = int(config.get("n_apogee_only", 0))
    if n_apogee_only:
        extra = sample_population(n_apogee_only, rng, {**population_config,
                                                       "stages": stage_mix(0.8)})
        extra["programme"] = ""
        extra["g_mag_target"] = sample_magnitudes(n_apogee_only, (9.0, 14.5), rng)
        extra["in_desi"] = False
        stars = pd.concat([stars, extra], ignore_index=True)
    stars = clip_to_spectral_model(stars, config)
    n = len(stars)
    stars["healpix"] = np.array(pixels)[rng.integers(0, len(pixels), n)]
    ra = np.empty(n)
    dec = np.empty(n)
    for hpx, centre in zip(pixels, centres):
        sel = np.flatnonzero(stars["healpix"].to_numpy() == hpx)
        ra[sel], dec[sel] = positions_in_pixel(hpx, centre, sel.size, rng)
    # half the APOGEE-only stars lie outside the DESI pixels (another part of the sky)
    outside = (~stars["in_desi"].to_numpy()) & (rng.random(n) < 0.5)
    ra[outside] = rng.uniform(0.0, 360.0, outside.sum())
    dec[outside] = rng.uniform(-60.0, -20.0, outside.sum())
    stars.loc[outside, "healpix"] = ang2pix_nest(DESI_NSIDE, ra[outside], dec[outside])

    # photometry and distance
    ebv = rng.gamma(2.0, 0.015, n)
    g_abs = absolute_g(stars["teff"].to_numpy(), stars["logg"].to_numpy(),
                       stars["mass_msun"].to_numpy())
    g_mag = stars["g_mag_target"].to_numpy()
    a_g = 2.7 * ebv
    distance_pc = 10.0 ** ((g_mag - g_abs - a_g + 5.0) / 5.0)
    bp_rp = bp_rp_colour(stars["teff"].to_numpy(), ebv)

    # kinematics by component
    comps = stars["component"].to_numpy()
    sig_v = np.select([comps == "thin_disk", comps == "thick_disk"], [30.0, 55.0], 150.0)
    mean_v = np.select([comps == "thin_disk", comps == "thick_disk"], [0.0, -30.0], 0.0)
    sig_t = np.select([comps == "thin_disk", comps == "thick_disk"], [40.0, 80.0], 200.0)
    vrad = np.clip(rng.normal(mean_v, sig_v), -550.0, 550.0)
    v_tan = rng.normal(0.0, 1.0, (n, 2)) * sig_t[:, None] + np.array([-15.0, -10.0])
    pm = v_tan / (4.74047 * distance_pc[:, None] / 1000.0)
    # cap total proper motion (mas/yr): ~1 arcsec over the 15.5 yr between APOGEE and DESI
    pm_max = float(config.get("max_proper_motion_mas_yr", 65.0))
    pm *= np.minimum(1.0, pm_max / np.maximum(np.hypot(pm[:, 0], pm[:, 1]), 1e-9))[:, None]
    parallax = 1000.0 / distance_pc

    binary = rng.random(n) < 0.08
    stars = stars.assign(
        ra_2016=ra, dec_2016=dec, ebv=ebv, g_abs=g_abs, g_mag=g_mag, bp_rp=bp_rp,
        distance_pc=distance_pc, parallax_mas=parallax, pmra=pm[:, 0], pmdec=pm[:, 1],
        vrad_kms=vrad, binary=binary,
    )
    stars["ra_desi"], stars["dec_desi"] = propagate_positions(ra, dec, pm[:, 0], pm[:, 1],
                                                              DR3_EPOCH, DESI_REF_EPOCH)
    ra_2000, dec_2000 = propagate_positions(ra, dec, pm[:, 0], pm[:, 1], DR3_EPOCH, APOGEE_EPOCH)
    # 2MASS astrometric errors, ~0.08 arcsec per coordinate
    astrometric = float(config.get("apogee_position_error_arcsec", 0.08)) / 3600.0
    stars["dec_2000"] = dec_2000 + rng.normal(0.0, astrometric, n)
    stars["ra_2000"] = np.mod(ra_2000 + rng.normal(0.0, astrometric, n)
                              / np.cos(np.radians(dec_2000)), 360.0)
    # identifiers: EDR3 ids; DR2 ids differ for a few percent
    edr3 = gaia_source_id(ra, dec, rng)
    dr2 = edr3.copy()
    changed = rng.random(n) < float(config.get("gaia_dr2_id_changed_fraction", 0.04))
    dr2[changed] = gaia_source_id(ra[changed], dec[changed], rng)
    stars["gaia_edr3_id"] = edr3
    stars["gaia_dr2_id"] = dr2
    targetid = 39_627_000_000_000_000 + rng.choice(10**13, n, replace=False).astype(np.int64)
    stars["TARGETID"] = np.where(stars["in_desi"], targetid, -1).astype(np.int64)
    stars["in_apogee"] = apogee_selection(stars, config, rng)
    stars["APOGEE_ID"] = [apogee_id(r, d) if sel else None for r, d, sel in
                          zip(stars["ra_2000"], stars["dec_2000"], stars["in_apogee"])]
    stars.insert(0, "star_id", np.arange(n, dtype=np.int64))
    return stars


def apogee_selection(stars: pd.DataFrame, config: dict[str, Any],
                     rng: np.random.Generator) -> np.ndarray:
    """Which stars APOGEE observed: H < ~12.2 (soft edge), red colours favoured (giants);
    every APOGEE-only star is selected."""
    h_mag = stars["g_mag"].to_numpy() - (0.3 + 1.4 * stars["bp_rp"].to_numpy())
    p_mag = 1.0 / (1.0 + np.exp((h_mag - float(config.get("apogee_h_limit", 13.3))) / 0.25))
    giant = stars["logg"].to_numpy() < 3.8
    p = p_mag * np.where(giant, float(config.get("apogee_giant_probability", 0.95)),
                         float(config.get("apogee_dwarf_probability", 0.08)))
    selected = rng.random(len(stars)) < p
    return selected | ~stars["in_desi"].to_numpy()


def apogee_id(ra: float, dec: float) -> str:
    """2MASS-style designation 2Mhhmmssss+ddmmsss of a position (deg, epoch 2000)."""
    ra_h = ra / 15.0
    h = int(ra_h)
    m = int((ra_h - h) * 60)
    s = (ra_h - h - m / 60) * 3600
    sign = "+" if dec >= 0 else "-"
    ad = abs(dec)
    d = int(ad)
    dm = int((ad - d) * 60)
    ds = (ad - d - dm / 60) * 3600
    return f"2M{h:02d}{m:02d}{int(s * 100):04d}{sign}{d:02d}{dm:02d}{int(ds * 10):03d}"
