"""HEALPix pixel numbers of DESI's healpix file tree: NESTED scheme, nside = 64 (the data
model's HPXNSIDE / HPXNEST), computed with astropy-healpix. Angles in degrees."""
from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy_healpix import HEALPix

DESI_NSIDE = 64
"""HPXNSIDE of DESI's healpix coadds (nested pixels)."""


def ang2pix_nest(nside: int, ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """NESTED HEALPix pixel (int64) of positions in degrees; ``nside`` a power of 2."""
    if nside <= 0 or nside & (nside - 1):
        raise ValueError(f"nside must be a power of 2, got {nside}")
    pixels = HEALPix(nside=nside, order="nested").lonlat_to_healpix(
        np.atleast_1d(np.asarray(ra_deg, dtype=float)) * u.deg,
        np.atleast_1d(np.asarray(dec_deg, dtype=float)) * u.deg)
    return np.asarray(pixels, dtype=np.int64)


def desi_healpix(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """DESI's healpix number (nside 64, nested) of positions in degrees."""
    return ang2pix_nest(DESI_NSIDE, ra_deg, dec_deg)
