"""DESI bitmasks: pixel MASK (desispec ``specmask``), COADD_FIBERSTATUS (desispec
``fibermask``) and the targeting bits used here (desitarget main-survey ``targetmask.yaml``,
approximate). A bit's value is ``1 << BITS[name]``."""
from __future__ import annotations

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
"""desispec.maskbits.specmask: any set bit marks an unusable pixel."""

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
"""desispec.maskbits.fibermask (COADD_FIBERSTATUS): 0 means good."""

DESI_TARGET_BITS: dict[str, int] = {"BGS_ANY": 60, "SCND_ANY": 61, "MWS_ANY": 62}
"""DESI_TARGET bits (approximate desitarget main-survey values)."""

MWS_TARGET_BITS: dict[str, int] = {
    "MWS_BROAD": 0, "MWS_MAIN_BLUE": 8, "MWS_MAIN_RED": 11,
    "BACKUP_BRIGHT": 60, "BACKUP_FAINT": 61,
}
"""MWS_TARGET bits (approximate desitarget main-survey values); non-zero marks MWS targets."""
