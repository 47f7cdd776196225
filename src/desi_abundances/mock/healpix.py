"""HEALPix pixel numbers (NESTED scheme) for DESI's healpix file tree and Gaia-like ids.

``astropy_healpix`` is used when installed; otherwise :func:`ang2pix_nest` is a direct numpy
transcription of the standard HEALPix ``ang2pix_nest`` algorithm (Gorski et al. 2005,
healpix_base ``loc2pix``), exact for any power-of-two nside. DESI uses nside = 64, nested.
"""
from __future__ import annotations

import numpy as np

DESI_NSIDE = 64


def _spread_bits(value: np.ndarray) -> np.ndarray:
    """Interleave zeros between the bits of ``value`` (bit i -> bit 2i)."""
    value = value.astype(np.int64)
    result = np.zeros_like(value)
    for bit in range(30):
        result |= ((value >> bit) & 1) << (2 * bit)
    return result


def ang2pix_nest(nside: int, ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """NESTED HEALPix pixel of positions (degrees), int64."""
    if nside <= 0 or nside & (nside - 1):
        raise ValueError(f"nside must be a power of 2, got {nside}")
    try:
        import astropy.units as u  # noqa: PLC0415
        from astropy_healpix import HEALPix  # noqa: PLC0415

        return np.asarray(HEALPix(nside=nside, order="nested").lonlat_to_healpix(
            np.atleast_1d(ra_deg) * u.deg, np.atleast_1d(dec_deg) * u.deg), dtype=np.int64)
    except ImportError:
        return _ang2pix_nest_numpy(nside, ra_deg, dec_deg)


def _ang2pix_nest_numpy(nside: int, ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=float))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=float))
    z = np.sin(np.radians(dec))
    za = np.abs(z)
    tt = np.mod(np.radians(ra), 2 * np.pi) / (np.pi / 2)  # in [0, 4)
    face = np.empty(ra.size, dtype=np.int64)
    ix = np.empty(ra.size, dtype=np.int64)
    iy = np.empty(ra.size, dtype=np.int64)

    eq = za <= 2.0 / 3.0
    temp1 = nside * (0.5 + tt[eq])
    temp2 = nside * z[eq] * 0.75
    jp = (temp1 - temp2).astype(np.int64)
    jm = (temp1 + temp2).astype(np.int64)
    ifp = jp // nside
    ifm = jm // nside
    face_eq = np.where(ifp == ifm, ifp | 4, np.where(ifp < ifm, ifp, ifm + 8))
    face[eq] = face_eq
    ix[eq] = jm & (nside - 1)
    iy[eq] = nside - (jp & (nside - 1)) - 1

    pol = ~eq
    ntt = np.minimum(tt[pol].astype(np.int64), 3)
    tp = tt[pol] - ntt
    tmp = nside * np.sqrt(3.0 * (1.0 - za[pol]))
    jp = np.minimum((tp * tmp).astype(np.int64), nside - 1)
    jm = np.minimum(((1.0 - tp) * tmp).astype(np.int64), nside - 1)
    north = z[pol] >= 0
    face[pol] = np.where(north, ntt, ntt + 8)
    ix[pol] = np.where(north, nside - jm - 1, jp)
    iy[pol] = np.where(north, nside - jp - 1, jm)
    return face * nside * nside + _spread_bits(ix) + (_spread_bits(iy) << 1)


def gaia_source_id(ra_deg: np.ndarray, dec_deg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaia-like source_id: level-12 nested HEALPix index x 2^35 + a random running number."""
    hpx12 = ang2pix_nest(4096, ra_deg, dec_deg)
    return hpx12 * np.int64(34_359_738_368) + rng.integers(1, 2**35 - 1, np.size(ra_deg))
