"""Error calibration (nn.calibration): degraded copies really are noisier, the combined error
has the documented form, and the fit recovers known scales."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.nn.calibration import combined_error, degrade, fit_scales
from desi_abundances.spectra import Spectra


def test_degrade_reaches_the_snr_and_keeps_the_noise_pattern():
    rng = np.random.default_rng(0)
    n, p = 20, 400
    sigma = np.where(np.arange(p) < 200, 0.01, 0.02)  # two 'arms' of different noise
    flux = (1.0 + sigma * rng.standard_normal((n, p))).astype(np.float32)
    ivar = np.broadcast_to(1.0 / sigma**2, (n, p)).astype(np.float32)
    meta = pd.DataFrame({"TARGETID": np.arange(n), "snr": np.full(n, 70.0)})
    spectra = Spectra(np.linspace(4000, 9000, p), flux, ivar, np.zeros((n, p), bool), meta)
    low = degrade(spectra, 10.0, rng)
    assert np.allclose(low.meta["snr"], 10.0)
    assert np.allclose(low.ivar / spectra.ivar, (10.0 / 70.0) ** 2, rtol=1e-5)
    measured = np.std(low.flux - spectra.flux, axis=0)
    assert abs(np.median(measured[200:]) / np.median(measured[:200]) - 2.0) < 0.2
    same = degrade(spectra, 200.0, rng)  # already noisier: unchanged
    assert np.array_equal(same.flux, spectra.flux)


def test_combined_error_form():
    err = combined_error(np.array([3.0, 3.0, 3.0]), np.array([4.0, 4.0, np.nan]),
                         np.array([0.5, 4.0, 9.0]), a=1.0, c=1.0)
    assert np.allclose(err, [5.0, np.sqrt(9 + 64), 3.0])


def test_fit_scales_recovers_the_scale_of_the_model_term():
    rng = np.random.default_rng(1)
    n = 6000
    snr = rng.choice([5.0, 15.0, 30.0, 60.0, 100.0], n)
    err_model = 1.0 / snr
    err_net = np.full(n, 1e-3)
    residual = 2.0 * err_model * rng.standard_normal(n)
    a, c, m = fit_scales(residual, err_net, err_model, np.ones(n), np.zeros(n), snr)
    assert abs(c - 2.0) <= 0.15 and m == 1.0  # no leverage: m stays at the model's own 1


def test_fit_scales_finds_the_epistemic_scale_of_stars_far_from_the_training_set():
    rng = np.random.default_rng(2)
    n = 8000
    snr = rng.choice([10.0, 30.0, 100.0], n)
    err_net = 1.0 / snr
    leverage = rng.choice([0.05, 0.15, 0.3, 0.8], n)
    true_error = err_net * np.sqrt(1.0 + 2.5**2 * leverage)  # m = 2.5
    residual = true_error * rng.standard_normal(n)
    a, c, m = fit_scales(residual, err_net, np.full(n, np.nan), np.ones(n), np.zeros(n), snr,
                         leverage=leverage)
    assert abs(a - 1.0) < 0.1 and abs(m - 2.5) < 0.3
