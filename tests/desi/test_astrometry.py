"""desi.astrometry: one epoch propagation for ingestion, crossmatch and the mock."""
from __future__ import annotations

import numpy as np
import pytest

from desi_abundances.desi.astrometry import propagate_positions


def test_propagate_positions_moves_along_proper_motion():
    # 1000 mas/yr north for 15.5 yr back in time = 15.5 arcsec south
    ra, dec = propagate_positions(np.array([10.0]), np.array([60.0]), np.array([0.0]), np.array([1000.0]), 2015.5, 2000.0)
    assert dec[0] == pytest.approx(60.0 - 15.5 / 3600.0, abs=1e-10)
    assert ra[0] == pytest.approx(10.0)
    # mu_alpha* 1000 mas/yr at dec 60: RA changes by twice the angle
    ra, _ = propagate_positions(np.array([10.0]), np.array([60.0]), np.array([1000.0]), np.array([0.0]), 2015.5, 2016.5)
    assert ra[0] == pytest.approx(10.0 + 2 / 3600.0, rel=1e-9)
    # no astrometry (NaN motion, epoch 0): unchanged
    ra, dec = propagate_positions(np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([np.nan, 5.0]),
                                  np.array([np.nan, 5.0]), np.array([2015.5, 0.0]), 2000.0)
    assert ra.tolist() == [1.0, 2.0] and dec.tolist() == [3.0, 4.0]


def test_propagation_is_reversible_and_wraps_ra():
    ra, dec = np.array([359.9999, 0.5]), np.array([-30.0, 45.0])
    pmra, pmdec = np.array([500.0, -800.0]), np.array([-300.0, 50.0])
    moved = propagate_positions(ra, dec, pmra, pmdec, 2016.0, 2000.0)
    assert moved[0][0] < 1.0 or moved[0][0] > 359.0
    back = propagate_positions(*moved, pmra, pmdec, 2000.0, 2016.0)
    np.testing.assert_allclose(back[0] % 360, ra % 360, atol=1e-9)
    np.testing.assert_allclose(back[1], dec, atol=1e-12)
