"""Epoch propagation of sky positions along proper motions (degrees, mas/yr, years)."""
from __future__ import annotations

import numpy as np

MAS_PER_DEGREE = 3.6e6


def propagate_positions(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    pmra_masyr: np.ndarray,
    pmdec_masyr: np.ndarray,
    from_epoch_yr: np.ndarray | float,
    to_epoch_yr: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Move positions linearly along their proper motions from ``from_epoch_yr`` to
    ``to_epoch_yr`` (Julian years, e.g. 2015.5).

    ``pmra_masyr`` is mu_alpha* (includes cos dec), as in Gaia and DESI. Rows without a finite
    proper motion or epoch (or with epoch <= 0, DESI's value for no astrometry) stay put.
    Linear motion is exact to far below a milliarcsec over decades except near the poles
    (cos dec is floored at 1e-9 and dec clipped to [-90, 90]).

    Returns:
        (ra_deg in [0, 360), dec_deg) at ``to_epoch_yr``.
    """
    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    pmra = np.asarray(pmra_masyr, dtype=float)
    pmdec = np.asarray(pmdec_masyr, dtype=float)
    epoch = np.broadcast_to(np.asarray(from_epoch_yr, dtype=float), ra.shape)
    movable = np.isfinite(pmra) & np.isfinite(pmdec) & np.isfinite(epoch) & (epoch > 0)
    dt_yr = np.where(movable, to_epoch_yr - np.where(movable, epoch, 0.0), 0.0)
    cos_dec = np.maximum(np.cos(np.radians(dec)), 1e-9)
    new_dec = dec + np.where(movable, pmdec, 0.0) * dt_yr / MAS_PER_DEGREE
    new_ra = ra + np.where(movable, pmra, 0.0) * dt_yr / MAS_PER_DEGREE / cos_dec
    return np.mod(new_ra, 360.0), np.clip(new_dec, -90.0, 90.0)
