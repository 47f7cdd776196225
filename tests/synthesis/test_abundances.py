"""[X/Fe] -> absolute abundances on the Grevesse et al. (2007) scale."""
import math

import pytest

from desi_abundances.synthesis import abundances as ab


def test_solar_scale_values():
    assert ab.SOLAR_ABUNDANCES[1] == 12.00
    assert ab.SOLAR_ABUNDANCES[26] == 7.45
    assert ab.SOLAR_ABUNDANCES[12] == 7.53
    assert ab.SOLAR_ABUNDANCES[8] == 8.66
    assert 43 not in ab.SOLAR_ABUNDANCES  # Tc has no solar value
    assert "Grevesse" in ab.SOLAR_SCALE_NAME


def test_absolute_abundances():
    result = ab.absolute_abundances(-0.5, {"mg_fe": 0.3, "c_fe": -0.1, "ce_fe": float("nan")})
    assert result[26] == pytest.approx(6.95)
    assert result[12] == pytest.approx(7.53 - 0.5 + 0.3)
    assert result[6] == pytest.approx(8.39 - 0.5 - 0.1)
    assert 58 not in result  # NaN label skipped


def test_primary_label_wins_over_secondary():
    result = ab.absolute_abundances(0.0, {"ci_fe": 0.5, "c_fe": 0.1, "tiii_fe": 0.4})
    assert result[6] == pytest.approx(8.39 + 0.1)
    assert result[22] == pytest.approx(4.90 + 0.4)  # only Ti II given: used


def test_bad_inputs():
    with pytest.raises(ValueError):
        ab.absolute_abundances(float("nan"), {})
    with pytest.raises(KeyError, match="zz_fe"):
        ab.absolute_abundances(0.0, {"zz_fe": 0.1})


def test_alpha_over_iron():
    assert ab.alpha_over_iron({"mg_fe": 0.2, "si_fe": 0.4, "ca_fe": float("nan")}) == pytest.approx(0.3)
    assert ab.alpha_over_iron({}) == 0.0


def test_every_apogee_label_has_an_element():
    from desi_abundances.constants import ABUNDANCE_COLUMNS
    for column in ABUNDANCE_COLUMNS:
        z = ab.atomic_number(column.lower())
        assert z in ab.SOLAR_ABUNDANCES and not math.isnan(ab.SOLAR_ABUNDANCES[z])
