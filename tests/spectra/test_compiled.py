"""The compiled preprocess (numba kernels) against its numpy reference: same values within
float32 rounding and identical masks, on spectra with every kind of bad input."""
from __future__ import annotations

import numpy as np
import pytest

from desi_abundances import spectra
from desi_abundances.spectra import preprocess, preprocess_reference
from desi_abundances.spectra import settings as spectra_settings
from synthetic_coadds import make_coadd


def _hard_coadd(seed: int = 3):
    """Masks, NaN/inf flux, zero/negative/NaN ivar, an empty arm, a wholly bad spectrum,
    weak and negative flux (normalised values outside the allowed range)."""
    coadd = make_coadd(n_spectra=40, snr=30.0, wiggle_amplitude=0.2, seed=seed,
                       mask_fraction=0.03, arm_steps=True)
    rng = np.random.default_rng(seed)
    b, r, z = (coadd.arms[arm] for arm in "BRZ")
    b.flux[1, 100:140] = np.inf
    b.ivar[2, :] = 0.0                      # whole B arm without data
    r.ivar[3, 50:60] = -1.0
    r.ivar[4, 70:75] = np.nan
    z.flux[5, 300:700] = 0.0                # a dead stretch: normalised flux ~ 0
    for arm in (b, r, z):
        arm.ivar[6, :] = 0.0                # no data at all
        arm.mask[7, ::2] = 1 << 3           # every other pixel masked
    r.flux[8] *= -1.0                       # negative flux: continuum <= 0
    z.flux[9, 1000:1010] = 1e6              # a cosmic: normalised flux >> 2
    b.flux[10] = rng.normal(0.0, 3.0, b.flux.shape[1]).astype(np.float32)  # pure noise
    return coadd


def _velocities(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    vrad = rng.normal(0.0, 150.0, n)
    vrad[0] = np.nan                         # missing
    vrad[11] = 999.0                         # large but allowed
    vrad[12] = -999.0
    vrad[13] = 2500.0                        # beyond max_abs_vrad_kms: masked spectrum
    vrad[14] = np.inf
    return vrad


def _assert_same(fast, reference):
    np.testing.assert_array_equal(fast.mask, reference.mask)
    np.testing.assert_allclose(fast.flux, reference.flux, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast.ivar, reference.ivar, rtol=1e-5, atol=0)
    np.testing.assert_array_equal(fast.wavelength, reference.wavelength)
    for column in reference.meta.columns:
        np.testing.assert_array_equal(fast.meta[column].to_numpy(), reference.meta[column].to_numpy())
    assert fast.meta.attrs == reference.meta.attrs
    assert fast.flux.dtype == reference.flux.dtype and fast.ivar.dtype == reference.ivar.dtype


@pytest.mark.parametrize("settings", [
    {},
    {"continuum_iterations": 1, "continuum_bin_pixels": 7, "continuum_sigma_angstrom": 35.0},
    {"clip_low_sigma": 0.5, "clip_low_depth": 0.1, "normalised_flux_range": [0.0, 1.5],
     "max_abs_vrad_kms": 500.0},
])
def test_fast_preprocess_matches_reference(settings):
    coadd = _hard_coadd()
    vrad = _velocities(coadd.n_spectra)
    fast = preprocess(coadd, vrad, settings)
    reference = preprocess_reference(coadd, vrad, settings)
    _assert_same(fast, reference)
    assert not np.isnan(fast.flux).any()
    assert fast.mask[6].all() and fast.mask[13].all() and fast.mask[0].all()
    assert not fast.meta["rest_frame_ok"][[0, 13, 14]].any()


def test_fast_preprocess_result_does_not_depend_on_threads(monkeypatch):
    coadd = make_coadd(n_spectra=200, snr=50.0, wiggle_amplitude=0.1, seed=5, mask_fraction=0.01)
    vrad = np.random.default_rng(2).normal(0.0, 100.0, coadd.n_spectra)
    monkeypatch.setattr(spectra_settings, "PREPROCESS_THREADS", 1)
    one = preprocess(coadd, vrad, {})
    monkeypatch.setattr(spectra_settings, "PREPROCESS_THREADS", 3)
    three = preprocess(coadd, vrad, {})
    np.testing.assert_array_equal(one.flux, three.flux)
    np.testing.assert_array_equal(one.mask, three.mask)
    _assert_same(three, preprocess_reference(coadd, vrad, {}))


def test_fast_preprocess_handles_big_endian_and_strided_inputs():
    coadd = _hard_coadd(seed=4)
    vrad = _velocities(coadd.n_spectra)
    reference = preprocess_reference(coadd, vrad, {})
    for arm in coadd.arms.values():
        arm.flux = arm.flux.astype(">f4")
        arm.ivar = np.asfortranarray(arm.ivar)
        arm.mask = arm.mask.astype(">i4")
    _assert_same(preprocess(coadd, vrad, {}), reference)


def test_fast_preprocess_checks_inputs_like_the_reference():
    coadd = make_coadd(n_spectra=3)
    with pytest.raises(spectra.SpectraShapeError, match="vrad_kms has 2 values"):
        preprocess(coadd, np.zeros(2), {})
    with pytest.raises(ValueError, match="unknown preprocessing"):
        preprocess(coadd, np.zeros(3), {"continuum_sigma": 3})
