"""The mock DESI x APOGEE survey: stars on the sky, DESI observations (healpix coadds), the
MWS catalogue, an APOGEE DR17-style allStar and the truth table. Pure functions of a
configuration dict and a seed; no file I/O (the Kedro catalog writes the results).

Everything produced here is MOCK data: coadd headers carry ``MOCK = True``.

Flow: :func:`simulate_stars` (one row per star, DESI targets and APOGEE-only stars) ->
:func:`plan_observations` (one row per DESI spectrum, incl. repeat observations and sky
fibres, grouped into healpix files) -> :func:`simulate_coadd` (one file at a time) ->
:func:`mws_catalogue`, :func:`apogee_allstar`, :func:`truth_table`.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.constants import APOGEE_DR17_ELEMENTS, ASPCAPFLAG_STAR_BAD_BIT, EXTRATARG_DUPLICATE_BIT
from desi_abundances.desi import instrument
from desi_abundances.desi.astrometry import propagate_positions
from desi_abundances.desi.bitmasks import DESI_TARGET_BITS, FIBERSTATUS_BITS, MWS_TARGET_BITS
from desi_abundances.desi.grids import ARMS, arm_wavelength
from desi_abundances.desi.healpix import DESI_NSIDE, ang2pix_nest
from desi_abundances.desi.naming import partition_id
from desi_abundances.io.desi_coadd import MOCK_COMMENT
from desi_abundances.mock.healpix import gaia_source_id
from desi_abundances.spectra import ArmSpectra, CoaddSpectra, good_pixels
from desi_abundances.spectral_models.registry import SpectralModel
from desi_abundances.spectral_models.registry import build as build_spectral_model
from desi_abundances.stellar.population import sample_population

logger = logging.getLogger(__name__)

DR3_EPOCH = 2016.0
DESI_REF_EPOCH = 2015.5
APOGEE_EPOCH = 2000.0
SPECPROD = "mock"

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


@dataclass
class Programme:
    """A DESI programme of the mock: magnitude range, exposure, stage mix."""

    name: str
    fraction: float
    g_range: tuple[float, float]
    exptime_s: float
    giant_fraction: float
    g_slope: float = 0.25
    """dN/dG ~ 10^(g_slope G) inside g_range."""


def _programmes(config: dict[str, Any]) -> list[Programme]:
    progs = config.get("programs") or {
        "backup": {"fraction": 0.5, "g_range": [11.0, 16.0], "exptime_s": 600.0,
                   "giant_fraction": 0.62, "g_slope": 0.1},
        "bright": {"fraction": 0.5, "g_range": [16.0, 19.0], "exptime_s": 1000.0,
                   "giant_fraction": 0.25, "g_slope": 0.25},
    }
    return [Programme(name, float(p["fraction"]), tuple(p["g_range"]), float(p["exptime_s"]),
                      float(p["giant_fraction"]), float(p.get("g_slope", 0.25)))
            for name, p in progs.items()]


def _stage_mix(giant_fraction: float) -> dict[str, float]:
    """Stage fractions with giants (RGB + clump, 3:1) making ``giant_fraction``."""
    rest = 1.0 - giant_fraction
    return {"giant": 0.75 * giant_fraction, "clump": 0.25 * giant_fraction,
            "dwarf": 0.72 * rest, "subgiant": 0.28 * rest}


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


def healpix_centres(config: dict[str, Any]) -> list[tuple[float, float]]:
    """(RA, Dec) in degrees of the healpix pixels that hold the mock survey."""
    centres = config.get("healpix_centres") or [
        [150.0, 2.0], [180.0, 30.0], [210.0, 50.0], [230.0, 10.0],
        [120.0, 60.0], [200.0, -5.0], [250.0, 40.0], [170.0, 15.0],
    ]
    return [tuple(map(float, c)) for c in centres]


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
    programmes = _programmes(config)
    fractions = np.array([p.fraction for p in programmes])
    counts = rng.multinomial(n_desi, fractions / fractions.sum())
    population_config = config.get("population") or {}
    for prog, count in zip(programmes, counts):
        pop = sample_population(int(count), rng, {**population_config,
                                                  "stages": _stage_mix(prog.giant_fraction)})
        pop["programme"] = prog.name
        pop["g_mag_target"] = sample_magnitudes(int(count), prog.g_range, rng, prog.g_slope)
        frames.append(pop)
    stars = pd.concat(frames, ignore_index=True)
    stars["in_desi"] = True

    n_apogee_only = int(config.get("n_apogee_only", 0))
    if n_apogee_only:
        extra = sample_population(n_apogee_only, rng, {**population_config,
                                                       "stages": _stage_mix(0.8)})
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


# --- DESI observations -----------------------------------------------------------------
def snr_per_pixel(g_mag: np.ndarray, exptime_s: np.ndarray, snr_at_g15: float = 60.0,
                  sky_g_mag: float = 18.5) -> np.ndarray:
    """Median S/N per pixel in the R arm: photon noise of the star plus sky background
    (equivalent to a G = ``sky_g_mag`` source) for an exposure of ``exptime_s`` seconds."""
    flux = 10.0 ** (-0.4 * (np.asarray(g_mag) - 15.0))
    sky = 10.0 ** (-0.4 * (sky_g_mag - 15.0))
    return snr_at_g15 * flux * np.sqrt(np.asarray(exptime_s) / 1000.0) / np.sqrt(flux + sky) * \
        np.sqrt(1.0 + sky)


def plan_observations(stars: pd.DataFrame, config: dict[str, Any]) -> pd.DataFrame:
    """One row per DESI spectrum: every DESI star in its programme, a fraction of backup
    stars observed again in the bright programme (or vice versa) at a different S/N, and
    sky fibres. Columns: star_id (-1 for sky), TARGETID, SURVEY, PROGRAM, HEALPIX,
    partition, OBJTYPE, EXPTIME, NUMEXP, snr_r, FIBERSTATUS, dead_arm."""
    rng = np.random.default_rng(int(config["seed"]) + 1)
    desi = stars[stars["in_desi"]]
    programmes = {p.name: p for p in _programmes(config)}
    rows = pd.DataFrame({
        "star_id": desi["star_id"].to_numpy(),
        "TARGETID": desi["TARGETID"].to_numpy(),
        "PROGRAM": desi["programme"].to_numpy(),
        "HEALPIX": desi["healpix"].to_numpy(),
        "g_mag": desi["g_mag"].to_numpy(),
    })
    repeat = rng.random(len(rows)) < float(config.get("repeat_fraction", 0.06))
    repeats = rows[repeat].copy()
    names = list(programmes)
    repeats["PROGRAM"] = [names[(names.index(p) + 1) % len(names)] for p in repeats["PROGRAM"]]
    rows = pd.concat([rows, repeats], ignore_index=True)
    n_sky = int(round(float(config.get("sky_fraction", 0.02)) * len(rows)))
    sky = pd.DataFrame({
        "star_id": -1, "TARGETID": 0,
        "PROGRAM": rng.choice(names, n_sky),
        "HEALPIX": rng.choice(np.unique(rows["HEALPIX"]), n_sky),
        "g_mag": np.nan,
    })
    sky["TARGETID"] = 39_628_000_000_000_000 + rng.choice(10**12, n_sky, replace=False)
    rows = pd.concat([rows, sky], ignore_index=True)
    rows["OBJTYPE"] = np.where(rows["star_id"] >= 0, "TGT", "SKY")
    rows["SURVEY"] = "main"
    base_exp = rows["PROGRAM"].map({k: p.exptime_s for k, p in programmes.items()}).to_numpy()
    numexp = rng.integers(1, 4, len(rows))
    rows["NUMEXP"] = numexp.astype(np.int16)
    rows["EXPTIME"] = (base_exp * rng.uniform(0.6, 1.6, len(rows))).astype(np.float32)
    snr = snr_per_pixel(rows["g_mag"].to_numpy(), rows["EXPTIME"].to_numpy(),
                        float(config.get("snr_at_g15", 60.0)))
    rows["snr_r"] = np.clip(snr * rng.lognormal(0.0, 0.15, len(rows)), 3.0, 150.0)
    bad = rng.random(len(rows)) < float(config.get("bad_fiber_fraction", 0.03))
    bits = rng.choice([FIBERSTATUS_BITS["BADPOSITION"], FIBERSTATUS_BITS["BADFIBER"],
                       FIBERSTATUS_BITS["MANYREJECTED"], FIBERSTATUS_BITS["BADAMPZ"]], len(rows))
    rows["FIBERSTATUS"] = np.where(bad, 1 << bits, 0).astype(np.int32)
    rows["dead_arm"] = np.where(bad & (bits == FIBERSTATUS_BITS["BADAMPZ"]), "Z", "")
    rows["partition"] = [partition_id(s, p, h) for s, p, h in
                         zip(rows["SURVEY"], rows["PROGRAM"], rows["HEALPIX"])]
    # order inside each file by TARGETID like DESI; keep a stable order of files
    rows = rows.sort_values(["partition", "TARGETID"], kind="stable").reset_index(drop=True)
    rows["FIBER"] = rows.groupby("partition").cumcount().astype(np.int32)
    return rows


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


class SurveySimulator:
    """Holds the spectral model and the LSF matrices (built once) and makes coadds."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.model: SpectralModel = build_spectral_model(
            config.get("spectral_model", "analytic"), **(config.get("spectral_model_args") or {}))
        grid_resolution = getattr(self.model, "grid_resolution", None)
        wave = np.asarray(self.model.wavelength)
        if grid_resolution is None:
            grid_resolution = 1.0 / np.median(np.diff(np.log(wave)))
            if np.ptp(np.diff(np.log(wave))) > 1e-3 / grid_resolution:
                raise ValueError("the spectral model's grid must be uniform in ln(wavelength)")
        self.grid_resolution = float(grid_resolution)
        self.lsf = {arm: instrument.lsf_matrix(wave, arm_wavelength(arm),
                                               self.model.resolving_power) for arm in ARMS}
        self.settings = instrument.InstrumentSettings(**(config.get("instrument") or {}))
        self.batch_size = int(config.get("batch_size", 500))
        self.write_resolution = bool(config.get("write_resolution", False))

    def simulate_coadd(self, obs: pd.DataFrame, stars: pd.DataFrame, seed: int) -> CoaddSpectra:
        """The coadd of the spectra in ``obs`` (one healpix file), seeded by ``seed``."""
        rng = np.random.default_rng(seed)
        n = len(obs)
        star = stars.set_index("star_id").reindex(obs["star_id"].to_numpy())
        is_star = obs["star_id"].to_numpy() >= 0
        arms = {arm: {k: np.empty((n, arm_wavelength(arm).size), dtype=dt)
                      for k, dt in (("flux", np.float32), ("ivar", np.float32), ("mask", np.int32))}
                for arm in ARMS}
        bad_columns = {arm: rng.integers(0, arm_wavelength(arm).size,
                                         self.settings.bad_columns_per_arm) for arm in ARMS}
        labels = star.reset_index()
        # binaries: the radial velocity of this epoch differs from the systemic one
        vrad = star["vrad_kms"].to_numpy() + np.where(star["binary"].fillna(False).to_numpy(),
                                                      rng.normal(0.0, 15.0, n), 0.0)
        for start in range(0, n, self.batch_size):
            rows = np.arange(start, min(start + self.batch_size, n))
            stellar = rows[is_star[rows]]
            if stellar.size:
                flux = self.model.normalised_flux(labels.iloc[stellar])
                out = instrument.observe(
                    flux, self.grid_resolution, self.lsf, vrad[stellar],
                    star["teff"].to_numpy()[stellar], star["g_mag"].to_numpy()[stellar],
                    star["ebv"].to_numpy()[stellar], obs["snr_r"].to_numpy()[stellar], rng,
                    self.settings, bad_columns=bad_columns,
                    dead_arm=obs["dead_arm"].to_numpy()[stellar])
                for arm in ARMS:
                    for key in ("flux", "ivar", "mask"):
                        arms[arm][key][stellar] = out[arm][key]
            sky_rows = rows[~is_star[rows]]
            if sky_rows.size:
                sky = instrument.sky_fibre_spectra(sky_rows.size, rng)
                for arm in ARMS:
                    for key in ("flux", "ivar", "mask"):
                        arms[arm][key][sky_rows] = sky[arm][key]
        arm_spectra = {}
        for arm in ARMS:
            wave = arm_wavelength(arm)
            resolution = None
            if self.write_resolution:
                resolution = np.broadcast_to(instrument.resolution_diagonals(wave),
                                             (n, 11, wave.size)).copy()
            arm_spectra[arm] = ArmSpectra(wavelength=wave, **arms[arm], resolution=resolution)
        hpx = int(obs["HEALPIX"].iloc[0])
        header = {
            "SPECPROD": SPECPROD, "SURVEY": obs["SURVEY"].iloc[0],
            "PROGRAM": obs["PROGRAM"].iloc[0], "SPGRP": "healpix", "SPGRPVAL": hpx,
            "HPXPIXEL": hpx, "HPXNSIDE": DESI_NSIDE, "HPXNEST": True,
            "MOCK": (True, MOCK_COMMENT),
        }
        coadd = CoaddSpectra(arms=arm_spectra, fibermap=fibermap(obs, stars, rng),
                             header=header, exp_fibermap=exp_fibermap(obs, rng))
        coadd.scores = scores(coadd, obs)
        return coadd


def scores(coadd: CoaddSpectra, obs: pd.DataFrame) -> pd.DataFrame:
    """SCORES table: median flux and S/N per arm, TSNR2 proxies (~ exposure time)."""
    table = {"TARGETID": coadd.fibermap["TARGETID"].to_numpy()}
    for arm, data in coadd.arms.items():
        good = (data.ivar > 0) & (data.mask == 0)
        table[f"MEDIAN_COADD_FLUX_{arm}"] = masked_median(data.flux, good)
        table[f"MEDIAN_COADD_SNR_{arm}"] = masked_median(data.flux * np.sqrt(data.ivar), good)
        table[f"INTEG_COADD_FLUX_{arm}"] = (np.where(good, data.flux, 0).sum(axis=1) * 0.8
                                            ).astype(np.float32)
    exptime = obs["EXPTIME"].to_numpy()
    table["TSNR2_BGS"] = (exptime * 1.2).astype(np.float32)
    table["TSNR2_GPBBRIGHT"] = (exptime * 0.12).astype(np.float32)
    table["TSNR2_GPBBACKUP"] = (exptime * 1.5).astype(np.float32)
    table["TSNR2_LRG"] = (exptime * 0.08).astype(np.float32)
    return pd.DataFrame(table)


def masked_median(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Row medians of ``values`` over ``good`` entries (0 for rows without any), float32.

    A sort-based replacement for ``np.nanmedian(axis=1)``, which is slow on 2-D arrays."""
    ordered = np.sort(np.where(good, values, np.inf), axis=1)
    count = good.sum(axis=1)
    rows = np.arange(values.shape[0])
    lo = ordered[rows, np.maximum((count - 1) // 2, 0)]
    hi = ordered[rows, np.maximum(count // 2, 0)]
    return np.where(count > 0, 0.5 * (lo + hi), 0.0).astype(np.float32)


def iter_partitions(observations: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """(partition id, rows) of every coadd file, in a stable order."""
    for pid, rows in observations.groupby("partition", sort=True):
        yield str(pid), rows.reset_index(drop=True)


def coadd_factories(stars: pd.DataFrame, observations: pd.DataFrame,
                    config: dict[str, Any]) -> dict[str, Callable[[], CoaddSpectra]]:
    """``{partition id: callable}`` that make each coadd when called (PartitionedDataset's
    lazy save writes them one at a time, so memory holds one file)."""
    simulator = SurveySimulator(config)
    seed = int(config["seed"])
    factories = {}
    for number, (pid, rows) in enumerate(iter_partitions(observations)):
        factories[pid] = (lambda rows=rows, s=seed * 1000 + 7 + number:
                          simulator.simulate_coadd(rows, stars, s))
    return factories


# --- catalogues ----------------------------------------------------------------------------
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
        "HEALPIX": obs["HEALPIX"].to_numpy().astype(np.int32),
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
        "GAIAEDR3_PMRA": ap["pmra"].to_numpy() + rng.normal(0, 0.03, n),
        "GAIAEDR3_PMDEC": ap["pmdec"].to_numpy() + rng.normal(0, 0.03, n),
        "GAIAEDR3_PARALLAX": ap["parallax_mas"].to_numpy() + rng.normal(0, 0.03, n),
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

