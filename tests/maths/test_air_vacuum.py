"""Air <-> vacuum against NIST values, and the round trip."""
import numpy as np
import pytest

from desi_abundances.maths.air_vacuum import air_to_vacuum, vacuum_to_air


def test_known_lines():
    assert air_to_vacuum(3933.663) == pytest.approx(3934.777, abs=2e-3)  # Ca II K (NIST)
    assert air_to_vacuum(6562.79) == pytest.approx(6564.60, abs=1e-2)  # H alpha (NIST)
    assert vacuum_to_air(3934.777) == pytest.approx(3933.663, abs=2e-3)


def test_round_trip_over_the_desi_range():
    air = np.linspace(3550.0, 9900.0, 2000)
    assert np.max(np.abs(vacuum_to_air(air_to_vacuum(air)) - air)) < 1e-6
    assert np.all(air_to_vacuum(air) > air)
