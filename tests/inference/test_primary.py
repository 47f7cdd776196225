"""inference.primary: exactly one PRIMARY per TARGETID, the good spectrum of highest S/N."""
from __future__ import annotations

import numpy as np

from desi_abundances.inference.primary import primary_spectra


def test_primary_is_the_good_spectrum_of_highest_snr():
    targetid = np.array([7, 5, 7, 7, 9, 5])
    snr = np.array([50.0, 10.0, 80.0, 30.0, np.nan, 10.0])
    flag = np.array([0, 0, 1, 0, 0, 0])  # the S/N 80 spectrum of 7 is flagged
    primary, nspec = primary_spectra(targetid, snr, flag)
    assert primary.tolist() == [True, True, False, False, True, False]  # tie: first row of 5
    assert nspec.tolist() == [3, 2, 3, 3, 1, 2]
    assert nspec.dtype == np.int16


def test_without_good_spectrum_highest_snr_wins_and_nan_ranks_last():
    primary, _ = primary_spectra(np.array([1, 1, 1]), np.array([np.nan, 5.0, 9.0]), np.array([1, 2, 4]))
    assert primary.tolist() == [False, False, True]
    primary, _ = primary_spectra(np.array([1, 1]), np.array([np.nan, 3.0]), np.array([0, 0]))
    assert primary.tolist() == [False, True]


def test_exactly_one_primary_per_targetid_at_random():
    rng = np.random.default_rng(3)
    targetid = rng.integers(0, 500, 5000)
    primary, nspec = primary_spectra(targetid, rng.normal(20, 10, 5000), rng.integers(0, 2, 5000))
    assert np.array_equal(np.bincount(targetid[primary], minlength=500) > 0, np.bincount(targetid, minlength=500) > 0)
    assert np.bincount(targetid[primary]).max() == 1
    np.testing.assert_array_equal(nspec, np.bincount(targetid)[targetid])
    assert len(primary_spectra(np.zeros(0), np.zeros(0), np.zeros(0))[0]) == 0
