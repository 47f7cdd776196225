"""Uncertainties that grow where the network cannot know: the network's own (heteroscedastic)
error combined with the spectrum model's noise propagation for this star, calibrated on the
validation split at every S/N, times the epistemic factor of its features' leverage.

Why: the network learns its error from bright training stars; below S/N 20 its errors are
2-4 times too small on the mock survey (issue 15), and it has no term for stars unlike the
training set. The spectrum model (``nn.fit_quality.fisher_variance``: the quadratic model's
Jacobian and this star's own pixel noise) knows how much this spectrum constrains each label
whatever its S/N. The combined error, per label k,

    err^2 = [(a_k err_net)^2 + (c_k err_model)^2 x max(1, rchi2)] x (1 + m_k^2 h)

grows as 1/S/N where the noise dominates, by sqrt(rchi2) where the model does not fit, and
with h as the star's last hidden features move away from the training stars' (h the
leverage of a Bayesian linear last layer, ``nn.feature_density``: the epistemic term; m = 1
is that model's own scale). a_k, c_k and m_k are fitted on the validation split, its spectra
degraded with extra noise (their own noise pattern, scaled) to S/N 5-80 (:func:`degrade`),
so that the robust std of z = (pred - reference) / sqrt(err^2 + ref_err^2) is 1 in every
S/N x leverage bin (:func:`fit_scales`); the test split is never used. On the mock the fit
gives m ~ 2-3: the last layer alone under-states how little the network knows far from its
training stars (its features were fitted to them too).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from desi_abundances.maths.robust import robust_std
from desi_abundances.spectra import Spectra

DEGRADED_SNR = (5.0, 7.0, 10.0, 14.0, 20.0, 28.0, 40.0, 56.0, 80.0)
"""Median S/N per pixel the validation spectra are degraded to (plus the originals)."""
SNR_BIN_EDGES = (0.0, 10.0, 20.0, 40.0, 80.0, np.inf)
LEVERAGE_BIN_EDGES = (0.0, 0.1, 0.2, 0.4, np.inf)
"""Leverage bins of the calibration cost, with the S/N bins: the errors must be right near
the training set and away from it (~0.1: a training-like star of the default network)."""
STARTS = ((1.0, 1.0, 1.0), (0.5, 1.5, 2.0), (0.3, 0.5, 3.0))
"""Nelder-Mead starting points (a, c, m) of :func:`fit_scales`."""
MAX_EPISTEMIC_SCALE = 10.0


def degrade(spectra: Spectra, snr: float, rng: np.random.Generator) -> Spectra:
    """A copy of preprocessed ``spectra`` with Gaussian noise added so that each spectrum's
    median S/N per pixel (meta ``snr``) becomes about ``snr``: its own noise pattern (the
    arms, sky lines, line cores) scaled up by snr_0 / snr, not white noise; spectra already
    noisier are left as they are. ivar lowered to match, meta ``snr`` updated."""
    good = (~spectra.mask) & (spectra.ivar > 0)
    with np.errstate(divide="ignore"):
        variance = np.where(good, 1.0 / np.where(good, spectra.ivar, 1.0), 1.0)
    snr0 = spectra.meta["snr"].to_numpy(np.float64)
    factor = np.maximum(snr0 / snr, 1.0)[:, None] ** 2
    extra = np.where(good, variance * (factor - 1.0), 0.0)
    flux = spectra.flux + np.sqrt(extra) * rng.standard_normal(spectra.flux.shape)
    ivar = np.where(good, 1.0 / np.where(good, variance * factor, 1.0), 0.0).astype(np.float32)
    meta = spectra.meta.copy()
    meta["snr"] = np.minimum(snr0, snr)
    return Spectra(wavelength=spectra.wavelength, flux=flux.astype(np.float32), ivar=ivar,
                   mask=spectra.mask, meta=meta)


def epistemic_factor(leverage: np.ndarray | None, scale: float = 1.0) -> np.ndarray | float:
    """sqrt(1 + scale^2 h) of the leverage h (``nn.feature_density``); 1 where h is not
    finite or ``leverage`` is None (a network without the feature density)."""
    if leverage is None:
        return 1.0
    leverage = np.asarray(leverage, np.float64)
    return np.sqrt(1.0 + scale**2 * np.where(np.isfinite(leverage), np.maximum(leverage, 0.0),
                                             0.0))


def combined_error(err_net: np.ndarray, err_model: np.ndarray, rchi2: np.ndarray,
                   a: float, c: float, leverage: np.ndarray | None = None,
                   m: float = 1.0) -> np.ndarray:
    """sqrt((a err_net)^2 + (c err_model)^2 max(1, rchi2)) x ``epistemic_factor(leverage,
    m)``; the model term is left out where err_model or rchi2 is not finite (a label the
    spectrum model lacks)."""
    inflation = np.where(np.isfinite(rchi2), np.maximum(rchi2, 1.0), 1.0)
    model = np.where(np.isfinite(err_model), (c * err_model) ** 2 * inflation, 0.0)
    return np.sqrt((a * err_net) ** 2 + model) * epistemic_factor(leverage, m)


def calibration_groups(snr: np.ndarray, leverage: np.ndarray | None,
                       min_per_bin: int) -> list[np.ndarray]:
    """Row indices of each S/N bin (:data:`SNR_BIN_EDGES`) x leverage bin
    (:data:`LEVERAGE_BIN_EDGES`, one bin without a finite leverage) holding at least
    ``min_per_bin`` rows."""
    snr_bin = np.digitize(snr, SNR_BIN_EDGES[1:-1])
    if leverage is None or not np.isfinite(leverage).any():
        leverage_bin = np.zeros(snr.size, np.int64)
    else:
        leverage_bin = np.digitize(np.nan_to_num(leverage, nan=0.0), LEVERAGE_BIN_EDGES[1:-1])
    key = snr_bin * len(LEVERAGE_BIN_EDGES) + leverage_bin
    groups = [np.flatnonzero(key == value) for value in np.unique(key)]
    return [rows for rows in groups if rows.size >= min_per_bin]


def fit_scales(residual: np.ndarray, err_net: np.ndarray, err_model: np.ndarray,
               rchi2: np.ndarray, ref_err: np.ndarray, snr: np.ndarray,
               min_per_bin: int = 30, leverage: np.ndarray | None = None
               ) -> tuple[float, float, float]:
    """(a, c, m) minimising the sum over :func:`calibration_groups` of log(robust std of
    z)^2, z = residual / sqrt(combined_error(..., leverage, m)^2 + ref_err^2): Nelder-Mead
    from :data:`STARTS`, |parameters|, m at most :data:`MAX_EPISTEMIC_SCALE` (m = 1 without
    a leverage). (1, 0, 1): no finite rows or no group."""
    keep = np.isfinite(residual) & np.isfinite(err_net) & np.isfinite(ref_err)
    lev = None if leverage is None else np.asarray(leverage, np.float64)[keep]
    groups = calibration_groups(snr[keep], lev, min_per_bin) if keep.any() else []
    if not groups:
        return 1.0, 0.0, 1.0
    r, en, ref = residual[keep], err_net[keep], ref_err[keep]
    em, chi = err_model[keep], rchi2[keep]
    with_leverage = lev is not None and np.isfinite(lev).any()

    def cost(x: np.ndarray) -> float:
        a, c, m = np.abs(x[0]), np.abs(x[1]), min(abs(x[2]), MAX_EPISTEMIC_SCALE)
        z = r / np.sqrt(combined_error(en, em, chi, a, c, lev, m) ** 2 + ref**2)
        return float(sum(np.log(robust_std(z[rows])) ** 2 for rows in groups))

    results = [minimize(cost, start if with_leverage else (*start[:2], 1.0),
                        method="Nelder-Mead",
                        options={"xatol": 1e-3, "fatol": 1e-6, "maxiter": 600})
               for start in STARTS]
    best = np.abs(min(results, key=lambda result: result.fun).x)
    return (float(best[0]), float(best[1]),
            float(min(best[2], MAX_EPISTEMIC_SCALE)) if with_leverage else 1.0)
