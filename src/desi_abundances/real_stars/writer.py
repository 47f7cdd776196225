"""Library spectra -> DESI's formats: coadd arms on the B/R/Z grids (vacuum Angstrom), an
MWS-like catalogue (VRAD 0: library spectra are rest-frame) and the reference-label table.

Per star: wavelengths converted air -> vacuum when the library is in air, flux linearly
interpolated onto each arm's 0.8 A grid (no convolution: the libraries are coarser than
DESI and cannot be sharpened; their FWHM is written in the header), scaled to a median of
``flux_level`` (1e-17 erg/s/cm2/A over covered pixels), Gaussian noise of sigma =
``flux_level / snr`` added (seeded) with IVAR = 1/sigma^2. Pixels the library does not
cover: FLUX 0, IVAR 0, MASK bit NODATA. Telluric bands (libraries not corrected for them):
IVAR 0, MASK bit SOMEBADPIX. numpy/pandas only, no Kedro.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.desi.bitmasks import SPECMASK_BITS
from desi_abundances.desi.grids import ARMS, arm_wavelength
from desi_abundances.desi.healpix import DESI_NSIDE, ang2pix_nest
from desi_abundances.labels.table import REFERENCE_ID
from desi_abundances.maths.air_vacuum import air_to_vacuum
from desi_abundances.real_stars.libraries import Library
from desi_abundances.spectra import ArmSpectra, CoaddSpectra, median_snr

logger = logging.getLogger(__name__)

NODATA_BIT = SPECMASK_BITS["NODATA"]
TELLURIC_BIT = SPECMASK_BITS["SOMEBADPIX"]
SPECPROD = "real-stars"
TARGETID_BASE = 9_000_000_000_000_000
"""TARGETIDs of library stars: TARGETID_BASE + library code x 10^7 + index (not DESI ids)."""
LIBRARY_CODES = {"MILES": 1, "STELIB": 2}
# Telluric bands, vacuum Angstrom (O2 B, H2O, O2 A, H2O): masked where a library is not corrected.
DEFAULT_TELLURIC_BANDS = ((6864.0, 6960.0), (7160.0, 7340.0), (7588.0, 7710.0),
                          (8120.0, 8350.0), (8940.0, 9830.0))


def vacuum_wavelength(library: Library, index: int) -> np.ndarray:
    """Vacuum wavelengths (Angstrom) of star ``index`` of ``library``."""
    wave = np.asarray(library.wavelength[index], dtype=np.float64)
    return wave if library.in_vacuum else air_to_vacuum(wave)


def resample(wave: np.ndarray, flux: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of ``flux`` (on increasing ``wave``) onto ``grid``, and the
    coverage mask: inside the library's range with both neighbours finite and > 0."""
    good = np.isfinite(flux) & (flux > 0)
    inside = (grid >= wave[0]) & (grid <= wave[-1])
    values = np.interp(grid, wave, np.where(good, flux, 0.0))
    weight = np.interp(grid, wave, good.astype(np.float64))
    covered = inside & (weight >= 1.0 - 1e-9)
    return np.where(covered, values, 0.0), covered


def in_bands(grid: np.ndarray, bands: Sequence[Sequence[float]]) -> np.ndarray:
    """True for grid pixels inside any [lo, hi] band (Angstrom)."""
    hit = np.zeros(grid.size, dtype=bool)
    for low, high in bands:
        hit |= (grid >= float(low)) & (grid <= float(high))
    return hit


def star_arms(wave_vacuum: np.ndarray, flux: np.ndarray, snr: float, flux_level: float,
              rng: np.random.Generator, telluric_bands: Sequence[Sequence[float]] = ()
              ) -> dict[str, dict[str, np.ndarray]]:
    """One star on DESI's arms: ``{arm: {flux, ivar, mask}}`` (module docstring for rules)."""
    resampled = {arm: resample(wave_vacuum, flux, arm_wavelength(arm)) for arm in ARMS}
    covered_flux = np.concatenate([f[c] for f, c in resampled.values()])
    if covered_flux.size == 0:
        raise ValueError("star covers no DESI pixel")
    scale = flux_level / float(np.median(covered_flux))
    sigma = flux_level / float(snr)
    out = {}
    for arm, (values, covered) in resampled.items():
        grid = arm_wavelength(arm)
        telluric = covered & in_bands(grid, telluric_bands)
        noisy = values * scale + rng.normal(0.0, sigma, grid.size)
        mask = np.where(covered, 0, 1 << NODATA_BIT) | np.where(telluric, 1 << TELLURIC_BIT, 0)
        out[arm] = {
            "flux": np.where(covered, noisy, 0.0).astype(np.float32),
            "ivar": np.where(covered & ~telluric, 1.0 / sigma**2, 0.0).astype(np.float32),
            "mask": mask.astype(np.int32),
        }
    return out


def library_positions(centre: Sequence[float], n: int, spacing_arcsec: float = 5.0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (degrees) of ``n`` stars on a square grid around ``centre`` (not the stars'
    real positions: library stars are matched by TARGETID)."""
    side = int(np.ceil(np.sqrt(n)))
    i, j = np.divmod(np.arange(n), side)
    step = spacing_arcsec / 3600.0
    dec = centre[1] + (i - side / 2) * step
    ra = centre[0] + (j - side / 2) * step / np.cos(np.radians(dec))
    return np.mod(ra, 360.0), dec


def fibermap(targetid: np.ndarray, ra: np.ndarray, dec: np.ndarray, healpix: np.ndarray) -> pd.DataFrame:
    """A DESI coadd FIBERMAP for library stars: good fibres, science targets of MWS
    (MWS_TARGET bit 0), no astrometry (PMRA/PMDEC 0, REF_EPOCH 0), no Gaia id."""
    n = len(targetid)
    zeros32 = np.zeros(n, dtype=np.float32)
    return pd.DataFrame({
        "TARGETID": targetid.astype(np.int64),
        "COADD_FIBERSTATUS": np.zeros(n, dtype=np.int32),
        "TARGET_RA": ra.astype(np.float64), "TARGET_DEC": dec.astype(np.float64),
        "PMRA": zeros32, "PMDEC": zeros32, "REF_EPOCH": zeros32,
        "REF_ID": np.zeros(n, dtype=np.int64), "REF_CAT": np.full(n, ""),
        "OBJTYPE": np.full(n, "TGT"),
        "DESI_TARGET": np.full(n, 1 << 62, dtype=np.int64),  # MWS_ANY
        "BGS_TARGET": np.zeros(n, dtype=np.int64),
        "MWS_TARGET": np.ones(n, dtype=np.int64),            # MWS_BROAD
        "SCND_TARGET": np.zeros(n, dtype=np.int64),
        "EBV": zeros32, "COADD_NUMEXP": np.ones(n, dtype=np.int16),
        "COADD_EXPTIME": zeros32, "HEALPIX": healpix.astype(np.int32),
    })


def library_header(library: Library, settings: Mapping[str, Any], healpix: int) -> dict[str, Any]:
    """Primary keywords: DESI's (SPECPROD, SURVEY, PROGRAM, HPXPIXEL...) and what the
    spectra are (REAL, library, resolution, air/vacuum, noise)."""
    return {
        "SPECPROD": SPECPROD, "SURVEY": settings["survey"], "PROGRAM": settings["program"],
        "SPGRP": "healpix", "SPGRPVAL": healpix, "HPXPIXEL": healpix, "HPXNSIDE": DESI_NSIDE,
        "HPXNEST": True, "MOCK": (False, "not the mock survey"),
        "REAL": (True, "REAL stellar-library spectra, not DESI"),
        "LIBRARY": (library.name, "stellar library (sdss-mangadap 4.5.0 wheel)"),
        "LIBFWHM": (library.fwhm_angstrom, "library resolution FWHM, Angstrom (DESI finer)"),
        "RESNOTE": "resolution of the library, not DESI's; no LSF applied",
        "WAVEORIG": ("vacuum" if library.in_vacuum else "air->vacuum", "library wavelengths"),
        "WAVESRC": library.vacuum_source[:68],
        "SNRADDED": (float(settings["snr"]), "Gaussian noise added: median S/N per pixel"),
        "FLUXLVL": (float(settings["flux_level"]), "median flux after scaling, 1e-17 cgs"),
        "NOISEED": (int(settings["seed"]), "seed of the added noise"),
        "TELLMASK": (bool(settings.get("mask_tellurics", False)), "telluric bands masked"),
    }


def library_coadds(library: Library, settings: Mapping[str, Any], rng: np.random.Generator
                   ) -> tuple[dict[str, CoaddSpectra], pd.DataFrame]:
    """Coadds of one library (one per HEALPix pixel its grid of positions touches) and a
    table of its stars: TARGETID, REFERENCE_ID, LIBRARY, RA, DEC, HEALPIX, partition."""
    n = len(library.ids)
    targetid = TARGETID_BASE + LIBRARY_CODES[library.name] * 10_000_000 + np.arange(n, dtype=np.int64)
    ra, dec = library_positions(settings["centre"], n, float(settings.get("spacing_arcsec", 5.0)))
    healpix = np.asarray(ang2pix_nest(DESI_NSIDE, ra, dec), dtype=np.int64)
    bands = settings.get("telluric_bands", DEFAULT_TELLURIC_BANDS) if settings.get("mask_tellurics") else ()
    arms = {arm: {k: [] for k in ("flux", "ivar", "mask")} for arm in ARMS}
    for index in range(n):
        star = star_arms(vacuum_wavelength(library, index), library.flux[index],
                         float(settings["snr"]), float(settings["flux_level"]), rng, bands)
        for arm in ARMS:
            for key, values in star[arm].items():
                arms[arm][key].append(values)
    stacked = {arm: {k: np.stack(v) for k, v in arms[arm].items()} for arm in ARMS}
    survey, program = settings["survey"], settings["program"]
    coadds, stars = {}, []
    for pixel in np.unique(healpix):
        rows = np.flatnonzero(healpix == pixel)
        partition = f"{survey}/{program}/{pixel // 100}/{pixel}/coadd-{survey}-{program}-{pixel}"
        coadd = CoaddSpectra(
            arms={arm: ArmSpectra(wavelength=arm_wavelength(arm),
                                  **{k: v[rows] for k, v in stacked[arm].items()})
                  for arm in ARMS},
            fibermap=fibermap(targetid[rows], ra[rows], dec[rows], healpix[rows]),
            header=library_header(library, settings, int(pixel)))
        coadds[partition] = coadd
        stars.append(pd.DataFrame({
            "TARGETID": targetid[rows], REFERENCE_ID: [f"{library.name}_{i}" for i in library.ids[rows]],
            "LIBRARY": library.name, "RA": ra[rows], "DEC": dec[rows], "HEALPIX": healpix[rows],
            "SURVEY": survey, "PROGRAM": program, "partition": partition,
            "SNR": median_snr(coadd), **{f"SN_{arm}": arm_snr(coadd, arm) for arm in ARMS}}))
    logger.info("%s: %d stars -> %d coadd(s); median S/N %.1f", library.name, n, len(coadds),
                float(np.median(pd.concat(stars)["SNR"])))
    return coadds, pd.concat(stars, ignore_index=True)


def arm_snr(coadd: CoaddSpectra, arm: str) -> np.ndarray:
    """Median S/N per good pixel of one arm (0 without good pixels), like RVTAB SN_<arm>."""
    data = coadd.arms[arm]
    good = (data.ivar > 0) & (data.mask == 0)
    ratio = np.where(good, data.flux * np.sqrt(np.where(good, data.ivar, 0.0)), np.nan)
    counts = good.sum(axis=1)
    with np.errstate(all="ignore"):
        median = np.nanmedian(np.where(counts[:, None] > 0, ratio, 0.0), axis=1)
    return np.where(counts > 0, median, 0.0)


def mws_catalogue(stars: pd.DataFrame, coadds: Mapping[str, CoaddSpectra]) -> dict[str, pd.DataFrame]:
    """RVTAB, FIBERMAP, GAIA (row-matched): VRAD 0 (rest frame), RVS_WARN 0, SUCCESS,
    PRIMARY, the measured SN_B/R/Z; no RVSpecFit labels (NaN), no Gaia id (SOURCE_ID -1)."""
    n = len(stars)
    nan = np.full(n, np.nan)
    rvtab = pd.DataFrame({
        "VRAD": np.zeros(n), "VRAD_ERR": np.zeros(n), "TEFF": nan, "LOGG": nan, "FEH": nan,
        "RVS_WARN": np.zeros(n, dtype=np.int64),
        **{f"SN_{arm}": stars[f"SN_{arm}"].to_numpy(np.float64) for arm in ARMS},
        "SUCCESS": np.ones(n, dtype=bool), "TARGETID": stars["TARGETID"].to_numpy(np.int64),
        "HEALPIX": stars["HEALPIX"].to_numpy(np.int32),
        "SURVEY": stars["SURVEY"].to_numpy(str), "PROGRAM": stars["PROGRAM"].to_numpy(str),
        "PRIMARY": np.ones(n, dtype=bool),
        "TARGET_RA": stars["RA"].to_numpy(), "TARGET_DEC": stars["DEC"].to_numpy(),
    })
    fibermaps = pd.concat([coadds[p].fibermap for p in stars["partition"].unique()], ignore_index=True)
    fmap = stars[["TARGETID"]].merge(fibermaps, on="TARGETID", how="left", validate="one_to_one")
    gaia = pd.DataFrame({"SOURCE_ID": np.full(n, -1, dtype=np.int64), "RA": nan, "DEC": nan})
    return {"RVTAB": rvtab, "FIBERMAP": fmap, "GAIA": gaia}


def reference_table(library: Library, stars: pd.DataFrame, errors: Mapping[str, float]) -> pd.DataFrame:
    """The library's reference-label table (``labels.table`` input form): REFERENCE_ID,
    TARGETID, RA, DEC, LIBRARY, LIBFWHM, TEFF/LOGG/FE_H with ``_ERR`` (the assumed literature
    errors ``errors``: the libraries give none per star) and ``_FLAG`` (0)."""
    table = pd.DataFrame({
        REFERENCE_ID: stars[REFERENCE_ID].to_numpy(), "TARGETID": stars["TARGETID"].to_numpy(np.int64),
        "RA": stars["RA"].to_numpy(), "DEC": stars["DEC"].to_numpy(), "LIBRARY": library.name,
        "LIBFWHM": np.full(len(stars), library.fwhm_angstrom, dtype=np.float32),
    })
    index = stars["TARGETID"].to_numpy(np.int64) % 10_000_000  # star's index in the library
    for column in ("TEFF", "LOGG", "FE_H"):
        values = library.labels[column].to_numpy(np.float64)[index]
        table[column] = values
        table[f"{column}_ERR"] = np.where(np.isfinite(values), float(errors[column.lower()]), np.nan)
        table[f"{column}_FLAG"] = np.zeros(len(stars), dtype=np.int32)
    return table
