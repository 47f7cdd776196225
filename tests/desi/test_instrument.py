"""DESI instrument model: resolution, Doppler shift, noise vs ivar, masks, healpix ids."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from desi_abundances.desi import instrument
from desi_abundances.desi.bitmasks import SPECMASK_BITS
from desi_abundances.desi.grids import ARMS, arm_wavelength
from desi_abundances.mock.healpix import ang2pix_nest
from desi_abundances.physics import SPEED_OF_LIGHT_KMS
from desi_abundances.spectral_models.analytic import log_uniform_grid

GRID_R = 30_000.0
CROSSMATCH = Path(__file__).resolve().parents[3] / "shared" / "data" / "desi_dr1_x_apogee" / \
    "apogee_dr12_desi_dr1_crossmatch.csv"


@pytest.fixture(scope="module")
def grid():
    return log_uniform_grid(3550.0, 9900.0, GRID_R)


@pytest.fixture(scope="module")
def lsf(grid):
    return {arm: instrument.lsf_matrix(grid, arm_wavelength(arm)) for arm in ARMS}


def test_resolving_power_range() -> None:
    r = instrument.desi_resolving_power(np.array([3600.0, 9800.0]))
    assert r[0] == pytest.approx(2000, rel=0.02) and r[1] == pytest.approx(5500, rel=0.02)


@pytest.mark.parametrize("centre", [4000.0, 6500.0, 9500.0])
def test_lsf_width_matches_resolution(grid, lsf, centre) -> None:
    arm = next(a for a in ARMS if arm_wavelength(a)[0] + 50 < centre < arm_wavelength(a)[-1] - 50)
    line = np.zeros(grid.size, dtype=np.float32)
    line[np.argmin(np.abs(grid - centre))] = 1.0
    observed = lsf[arm] @ line
    wave = arm_wavelength(arm)
    mean = np.sum(wave * observed) / observed.sum()
    sigma = np.sqrt(np.sum(observed * (wave - mean) ** 2) / observed.sum())
    expected = instrument.lsf_sigma_angstrom(np.array([centre]))[0]
    assert sigma == pytest.approx(expected, rel=0.1)
    # a flat spectrum stays flat
    np.testing.assert_allclose(lsf[arm] @ np.ones(grid.size, dtype=np.float32), 1.0, rtol=1e-5)


@pytest.mark.parametrize("vrad", [-450.0, -20.0, 130.0, 500.0])
def test_doppler_shift_moves_lines_by_v_over_c(grid, vrad) -> None:
    line = 1 - 0.6 * np.exp(-0.5 * ((grid - 6000.0) / 0.5) ** 2)
    shifted = instrument.doppler_shift(line[None, :], GRID_R, np.array([vrad]))[0]
    depth = 1 - shifted
    centroid = np.sum(grid * depth) / depth.sum()
    assert centroid == pytest.approx(6000.0 * (1 + vrad / SPEED_OF_LIGHT_KMS), abs=0.01)


def test_noise_matches_ivar_and_masks(grid, lsf) -> None:
    rng = np.random.default_rng(5)
    n = 40
    flux = np.ones((n, grid.size), dtype=np.float32)
    out = instrument.observe(flux, GRID_R, lsf, rng.normal(0, 50, n), rng.uniform(4000, 6500, n),
                             rng.uniform(13, 18, n), np.full(n, 0.02), np.full(n, 20.0), rng,
                             bad_columns={"B": np.array([10, 11])},
                             dead_arm=np.array(["Z"] + [""] * (n - 1)))
    for arm in ARMS:
        data = out[arm]
        good = (data["ivar"] > 0) & (data["mask"] == 0)
        chi2 = ((data["flux"] - data["model"]) ** 2 * data["ivar"])[good]
        assert chi2.mean() == pytest.approx(1.0, abs=0.05)
        assert (data["ivar"][data["mask"] != 0] == 0).all()
    cosmic = (out["R"]["mask"] & (1 << SPECMASK_BITS["COSMIC"])) != 0
    assert cosmic.any()
    assert (out["Z"]["mask"][0] & (1 << SPECMASK_BITS["NODATA"])).all()
    assert (out["Z"]["ivar"][0] == 0).all()
    snr_r = np.median(out["R"]["model"] * np.sqrt(out["R"]["ivar"]), axis=1)
    np.testing.assert_allclose(snr_r, 20.0, rtol=0.1)


def test_healpix_known_pixel() -> None:
    # the real healpix coadd coadd-special-dark-27247 holds a target at this position
    assert ang2pix_nest(64, np.array([149.465404]), np.array([1.793647]))[0] == 27247


@pytest.mark.skipif(not CROSSMATCH.exists(), reason="real DESI x APOGEE table not available")
def test_healpix_matches_real_desi_pixels() -> None:
    table = pd.read_csv(CROSSMATCH)
    pixels = ang2pix_nest(64, table["desi_mean_fiber_ra"].to_numpy(),
                          table["desi_mean_fiber_dec"].to_numpy())
    assert (pixels == table["desi_healpix"].to_numpy()).mean() > 0.999
