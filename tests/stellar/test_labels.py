"""Stellar labels and the microturbulence relation."""
import numpy as np

from desi_abundances.stellar.labels import (
    ELEMENT_LABELS,
    STELLAR_LABELS,
    mean_microturbulence,
    microturbulence,
)


def test_label_names():
    assert STELLAR_LABELS[:4] == ("teff", "logg", "fe_h", "vmic")
    assert STELLAR_LABELS[4:] == ELEMENT_LABELS and "mg_fe" in ELEMENT_LABELS


def test_mean_relation_is_the_relation_without_scatter():
    teff, logg = np.array([4500.0, 5800.0]), np.array([2.0, 4.4])
    mean = mean_microturbulence(teff, logg)
    assert np.allclose(mean, [2.24 - 0.3 * 2.0, 1.0 + 4e-4 * 300.0])
    draws = microturbulence(np.full(20_000, 4500.0), np.full(20_000, 2.0),
                            np.random.default_rng(0))
    assert abs(draws.mean() - mean[0]) < 0.01 and 0.09 < draws.std() < 0.11
