"""APOGEE DR17 facts and label names shared by every stage. DESI's grids and bitmasks live in
:mod:`desi_abundances.desi`, physical constants in :mod:`desi_abundances.physics`.

Sources: the DESI data model (healpix coadds), desispec ``maskbits.py`` and the SDSS DR17
allStar data model (see ``../shared/DATA_FORMATS.md``). Wavelengths are vacuum Angstrom.
"""
from __future__ import annotations

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
