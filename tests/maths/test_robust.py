"""Robust std: 1.4826 x MAD, the std of a Gaussian, blind to a few outliers."""
import math

import numpy as np
import pytest

from desi_abundances.maths.robust import MAD_TO_STD, robust_std


def test_known_value_and_empty():
    assert robust_std(np.array([1.0, 2.0, 4.0, 7.0])) == pytest.approx(MAD_TO_STD * 1.5)
    assert math.isnan(robust_std(np.array([])))


def test_gaussian_scale_and_outliers():
    values = np.random.default_rng(0).normal(0.0, 2.0, 200_000)
    values[:1000] = 1e6
    assert robust_std(values) == pytest.approx(2.0, rel=0.02)


def test_along_an_axis_matches_row_by_row():
    draws = np.random.default_rng(1).normal(size=(5, 31))
    assert np.allclose(robust_std(draws, axis=1), [robust_std(row) for row in draws])
