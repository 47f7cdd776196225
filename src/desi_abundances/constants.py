"""Survey facts shared by every stage: DESI wavelength grids and bitmasks, APOGEE DR17 bits
and label names.

Sources: the DESI data model (healpix coadds), desispec ``maskbits.py`` and the SDSS DR17
allStar data model (see ``../shared/DATA_FORMATS.md``). Wavelengths are vacuum Angstrom.
"""
from __future__ import annotations

import numpy as np

SPEED_OF_LIGHT_KMS = 299_792.458
"""Speed of light in km/s."""

# --- DESI spectrograph -----------------------------------------------------------------
ARMS: tuple[str, ...] = ("B", "R", "Z")
WAVELENGTH_STEP_ANGSTROM = 0.8
ARM_WAVELENGTH_RANGE_ANGSTROM: dict[str, tuple[float, float]] = {
    "B": (3600.0, 5800.0),
    "R": (5760.0, 7620.0),
    "Z": (7520.0, 9824.0),
}
BRZ_WAVELENGTH_RANGE_ANGSTROM = (3600.0, 9824.0)
RESOLUTION_NDIAG = 11
"""Number of diagonals in DESI's band-diagonal resolution matrix."""


def linear_grid(start: float, end: float, step: float = WAVELENGTH_STEP_ANGSTROM) -> np.ndarray:
    """Inclusive linear wavelength grid in Angstrom (float64)."""
    n_pixels = int(round((end - start) / step)) + 1
    return start + step * np.arange(n_pixels, dtype=np.float64)


def arm_wavelength(arm: str) -> np.ndarray:
    """DESI's wavelength grid of one arm (B: 2751, R: 2326, Z: 2881 pixels), Angstrom."""
    return linear_grid(*ARM_WAVELENGTH_RANGE_ANGSTROM[arm])


def brz_wavelength() -> np.ndarray:
    """The combined B+R+Z grid, 3600-9824 Angstrom in 0.8 Angstrom steps (7781 pixels)."""
    return linear_grid(*BRZ_WAVELENGTH_RANGE_ANGSTROM)


# desispec.maskbits.specmask: any set bit marks an unusable pixel.
SPECMASK_BITS: dict[str, int] = {
    "SOMEBADPIX": 0,
    "ALLBADPIX": 1,
    "COSMIC": 2,
    "LOWFLAT": 3,
    "BADFIBERFLAT": 4,
    "BRIGHTSKY": 5,
    "BADSKY": 6,
    "BAD2DFIT": 7,
    "NODATA": 8,
    "BADFIBER": 9,
    "POORPOSITION": 10,
    "BADAMPBIAS": 11,
    "BADAMPREADNOISE": 12,
    "BADAMPCTE": 13,
}

# desispec.maskbits.fibermask (COADD_FIBERSTATUS): 0 means good.
FIBERSTATUS_BITS: dict[str, int] = {
    "UNASSIGNED": 0,
    "BROKENFIBER": 1,
    "MISSINGPOSITION": 2,
    "BADPOSITION": 3,
    "POORPOSITION": 4,
    "BADFIBER": 8,
    "BADTRACE": 9,
    "BADFLAT": 10,
    "BADARC": 11,
    "MANYBADCOL": 12,
    "MANYREJECTED": 13,
    "BADAMPB": 16,
    "BADAMPR": 17,
    "BADAMPZ": 18,
}

FLUX_UNIT = "10**-17 erg/(s cm2 Angstrom)"
"""BUNIT of DESI FLUX images."""

# --- APOGEE DR17 -----------------------------------------------------------------------
ASPCAPFLAG_STAR_BAD_BIT = 23
EXTRATARG_DUPLICATE_BIT = 4
APOGEE_DR17_ELEMENTS: tuple[str, ...] = (
    "C", "CI", "N", "O", "NA", "MG", "AL", "SI", "P", "S", "K",
    "CA", "TI", "TIII", "V", "CR", "MN", "CO", "NI", "CU", "CE",
)
"""Elements with an ``<X>_FE`` column in DR17 allStar (besides FE_H)."""

STELLAR_PARAMETER_COLUMNS: tuple[str, ...] = ("TEFF", "LOGG", "FE_H")
ABUNDANCE_COLUMNS: tuple[str, ...] = tuple(f"{el}_FE" for el in APOGEE_DR17_ELEMENTS)
ALL_LABEL_COLUMNS: tuple[str, ...] = STELLAR_PARAMETER_COLUMNS + ABUNDANCE_COLUMNS
"""APOGEE column names of every label, in the project's canonical order."""


def label_name(apogee_column: str) -> str:
    """Python-side label name of an APOGEE column: ``MG_FE`` -> ``mg_fe``."""
    return apogee_column.lower()


LABEL_UNITS: dict[str, str] = {"teff": "K", "logg": "dex"}
"""Units of each label; every label not listed is an abundance in dex."""


def label_unit(label: str) -> str:
    """Unit of a label (``K`` for teff, ``dex`` otherwise)."""
    return LABEL_UNITS.get(label, "dex")
