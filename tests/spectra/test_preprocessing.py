"""spectra.preprocessing: continuum normalisation, arm merging, rest-frame shift, masks."""
from __future__ import annotations

import numpy as np
import pytest

from desi_abundances.desi.grids import brz_wavelength
from desi_abundances.physics import SPEED_OF_LIGHT_KMS
from desi_abundances.spectra import (
    SpectraShapeError,
    preprocess,
    preprocess_reference,
    preprocessing_settings,
    shift_to_rest_frame,
)
from desi_abundances.spectra import reference as reference_module
from synthetic_coadds import LINE_CENTRES_ANGSTROM, line_profile, make_coadd


def _line_free(wavelength: np.ndarray, margin: float = 40.0) -> np.ndarray:
    """Pixels more than ``margin`` A from every line and 40 A from the grid ends."""
    far = np.ones(wavelength.size, bool)
    for centre in LINE_CENTRES_ANGSTROM:
        far &= np.abs(wavelength - centre) > margin
    return far & (wavelength > wavelength[0] + 40) & (wavelength < wavelength[-1] - 40)


def test_wiggle_and_arm_steps_are_removed():
    coadd = make_coadd(6, snr=1e5, wiggle_amplitude=0.05, arm_steps=True, seed=3)
    out = preprocess(coadd, np.zeros(6), {})
    truth = line_profile(out.wavelength, np.zeros(6))
    residual = np.abs(out.flux - truth)[:, _line_free(out.wavelength)]
    # a 5 % wiggle of 300 A period and 30 % arm steps leave < 0.5 % in the continuum
    assert np.percentile(residual, 99) < 0.005
    assert residual.max() < 0.01
    # and the lines keep their depth (50 % deep at the centre)
    centre = np.argmin(np.abs(out.wavelength - 6563.0))
    assert out.flux[:, centre] == pytest.approx(0.5, abs=0.03)


def test_normalisation_is_independent_of_wiggle():
    plain = preprocess(make_coadd(4, snr=300, seed=1), np.zeros(4), {})
    wiggly = preprocess(make_coadd(4, snr=300, seed=1, wiggle_amplitude=0.04), np.zeros(4), {})
    assert np.median(np.abs(plain.flux - wiggly.flux)) < 0.003


def test_rest_frame_shift_moves_line_back():
    velocities = np.array([-250.0, 0.0, 180.0, 420.0])
    coadd = make_coadd(4, snr=1e4, vrad_kms=velocities)
    out = preprocess(coadd, velocities, {})
    wave = out.wavelength
    for centre in LINE_CENTRES_ANGSTROM:
        window = np.abs(wave - centre) < 6
        # flux-weighted line centroid of each spectrum in the rest frame
        depth = 1.0 - out.flux[:, window]
        centroid = (depth * wave[window]).sum(axis=1) / depth.sum(axis=1)
        np.testing.assert_allclose(centroid, centre, atol=0.05)
    # without the shift the 420 km/s line is ~5.9 A off at 4300 A
    unshifted = preprocess(coadd, np.zeros(4), {})
    window = np.abs(wave - 4300 * (1 + 420 / SPEED_OF_LIGHT_KMS)) < 6
    assert unshifted.flux[3, window].min() < 0.6


def test_shift_interpolates_linearly_and_propagates_variance():
    wave = 5000.0 + 0.8 * np.arange(50)
    flux = np.tile(np.arange(50, dtype=np.float32), (1, 1))
    ivar = np.ones((1, 50), np.float32)
    # shift by half a pixel at pixel 25 (lambda = 5020 A)
    velocity = 0.4 / 5020.0 * SPEED_OF_LIGHT_KMS
    out_flux, out_ivar = shift_to_rest_frame(flux, ivar, wave, np.array([velocity]))
    assert out_flux[0, 25] == pytest.approx(25.5, abs=0.01)
    assert out_ivar[0, 25] == pytest.approx(2.0, rel=0.02)  # (0.5^2 + 0.5^2)^-1
    assert out_ivar[0, -1] == 0 and out_flux[0, -1] == 1.0  # off the grid: bad


def test_masks_never_produce_nan():
    coadd = make_coadd(10, snr=30, mask_fraction=0.05, seed=5)
    coadd.arms["R"].flux[2, :] = np.nan          # a whole arm without data
    coadd.arms["R"].ivar[3, :] = 0.0
    coadd.arms["B"].ivar[4, 100:200] = np.inf    # absurd ivar
    coadd.arms["Z"].mask[5, :] = 1               # all masked
    out = preprocess(coadd, np.zeros(10), {})
    assert np.isfinite(out.flux).all() and np.isfinite(out.ivar).all()
    assert (out.ivar[out.mask] == 0).all() and (out.flux[out.mask] == 1).all()
    assert (out.ivar[~out.mask] > 0).all()
    r_arm = (out.wavelength > 5800.5) & (out.wavelength < 7519.5)
    assert out.mask[2, r_arm].all() and out.mask[3, r_arm].all()
    assert out.mask.mean() < 0.5


def test_missing_velocity_is_flagged_and_fully_masked():
    velocities = np.array([10.0, np.nan, 5000.0, -20.0])
    out = preprocess(make_coadd(4), velocities, {})
    np.testing.assert_array_equal(out.meta["rest_frame_ok"], [True, False, False, True])
    assert out.mask[1].all() and out.mask[2].all()
    assert (out.flux[1] == 1).all() and (out.ivar[2] == 0).all()
    assert out.meta["good_pixel_fraction"].iloc[1] == 0


def test_meta_and_settings():
    out = preprocess(make_coadd(3), np.zeros(3), {"continuum_sigma_angstrom": 25})
    assert list(out.meta["TARGETID"]) == [1000, 1001, 1002]
    assert out.meta.attrs["preprocessing"]["continuum_sigma_angstrom"] == 25.0
    assert out.meta.attrs["is_mock"] is True
    assert np.array_equal(out.wavelength, brz_wavelength())
    with pytest.raises(ValueError, match="unknown preprocessing setting"):
        preprocessing_settings({"continuum_sigma": 20})
    with pytest.raises(SpectraShapeError, match="vrad_kms has 2 values"):
        preprocess(make_coadd(3), np.zeros(2), {})


def test_arm_off_the_lattice_is_refused():
    coadd = make_coadd(2)
    coadd.arms["R"].wavelength = coadd.arms["R"].wavelength + 0.3
    with pytest.raises(SpectraShapeError, match="arm R"):
        preprocess(coadd, np.zeros(2), {})


def test_block_size_does_not_change_result(monkeypatch):
    # the numpy reference is the path that works in blocks (the compiled one goes row by row)
    coadd = make_coadd(9, snr=50, mask_fraction=0.01, vrad_kms=np.linspace(-100, 100, 9))
    monkeypatch.setattr(reference_module, "PREPROCESS_BLOCK_ROWS", 16)
    reference = preprocess_reference(coadd, np.linspace(-100, 100, 9), {})
    monkeypatch.setattr(reference_module, "PREPROCESS_BLOCK_ROWS", 4)
    blocked = preprocess_reference(coadd, np.linspace(-100, 100, 9), {})
    np.testing.assert_array_equal(reference.flux, blocked.flux)
    np.testing.assert_array_equal(reference.mask, blocked.mask)
