"""Uncertainties that grow where the network cannot know: the network's own (heteroscedastic)
error combined with the spectrum model's noise propagation for this star, calibrated on the
validation split at every S/N, times the epistemic factor of its features' leverage.

Why: the network learns its error from bright training stars; below S/N 20 its errors are
2-4 times too small on the mock survey (issue 15), and it has no term for stars unlike the
training set. The spectrum model (``nn.fit_quality.fisher_variance``: the quadratic model's
Jacobian and this star's own pixel noise) knows how much this spectrum constrains each label
whatever its S/N. The combined error, per label k,

    err^2 = [(a_k err_net)^2 + (c_k err_model)^2 x max(1, rchi2)] x (1 + h)

grows as 1/S/N where the noise dominates, by sqrt(rchi2) where the model does not fit, and
by sqrt(1 + h) as the star's last hidden features move away from the training stars' (h the
leverage of a Bayesian linear last layer, ``nn.feature_density``: the epistemic term, with
no fitted scale). a_k and c_k are fitted on the
validation split, its spectra degraded with extra noise (their own noise pattern, scaled)
to S/N 5-80 (:func:`degrade`), so
that the robust std of z = (pred - reference) / sqrt(err^2 + ref_err^2) is 1 in every S/N
bin (:func:`fit_scales`); the test split is never used.
"""
from __future__ import annotations

import numpy as np

from desi_abundances.maths.robust import robust_std
from desi_abundances.spectra import Spectra

DEGRADED_SNR = (5.0, 7.0, 10.0, 14.0, 20.0, 28.0, 40.0, 56.0, 80.0)
"""Median S/N per pixel the validation spectra are degraded to (plus the originals)."""
SNR_BIN_EDGES = (0.0, 10.0, 20.0, 40.0, 80.0, np.inf)
A_GRID = np.round(np.arange(0.2, 3.01, 0.05), 3)
C_GRID = np.round(np.concatenate([np.arange(0.0, 2.0, 0.1), np.arange(2.0, 6.01, 0.25)]), 3)


def degrade(spectra: Spectra, snr: float, rng: np.random.Generator) -> Spectra:
    """A copy of preprocessed ``spectra`` with Gaussian noise added so that each spectrum's
    median S/N per pixel (meta ``snr``) becomes about ``snr``: its own noise pattern (the
    arms, sky lines, line cores) scaled up by snr_0 / snr, not white noise; spectra already
    noisier are left as they are. ivar lowered to match, meta ``snr`` updated."""
    good = (~spectra.mask) & (spectra.ivar > 0)
    with np.errstate(divide="ignore"):
        variance = np.where(good, 1.0 / np.where(good, spectra.ivar, 1.0), np.inf)
    snr0 = spectra.meta["snr"].to_numpy(np.float64)
    factor = np.maximum(snr0 / snr, 1.0)[:, None] ** 2
    extra = np.where(good, variance * (factor - 1.0), 0.0)
    flux = spectra.flux + np.sqrt(extra) * rng.standard_normal(spectra.flux.shape)
    ivar = np.where(good, 1.0 / np.where(good, variance * factor, 1.0), 0.0).astype(np.float32)
    meta = spectra.meta.copy()
    meta["snr"] = np.minimum(snr0, snr)
    return Spectra(wavelength=spectra.wavelength, flux=flux.astype(np.float32), ivar=ivar,
                   mask=spectra.mask, meta=meta)


def epistemic_factor(leverage: np.ndarray | None) -> np.ndarray | float:
    """sqrt(1 + h) of the leverage h (``nn.feature_density``); 1 where h is not finite or
    ``leverage`` is None (a network without the feature density)."""
    if leverage is None:
        return 1.0
    leverage = np.asarray(leverage, np.float64)
    return np.sqrt(1.0 + np.where(np.isfinite(leverage), np.maximum(leverage, 0.0), 0.0))


def combined_error(err_net: np.ndarray, err_model: np.ndarray, rchi2: np.ndarray,
                   a: float, c: float, leverage: np.ndarray | None = None) -> np.ndarray:
    """sqrt((a err_net)^2 + (c err_model)^2 max(1, rchi2)) x :func:`epistemic_factor`; the
    model term is left out where err_model or rchi2 is not finite (a label the spectrum
    model lacks)."""
    inflation = np.where(np.isfinite(rchi2), np.maximum(rchi2, 1.0), 1.0)
    model = np.where(np.isfinite(err_model), (c * err_model) ** 2 * inflation, 0.0)
    return np.sqrt((a * err_net) ** 2 + model) * epistemic_factor(leverage)


def fit_scales(residual: np.ndarray, err_net: np.ndarray, err_model: np.ndarray,
               rchi2: np.ndarray, ref_err: np.ndarray, snr: np.ndarray,
               min_per_bin: int = 30, leverage: np.ndarray | None = None
               ) -> tuple[float, float]:
    """(a, c) on a grid minimising sum over S/N bins of log(robust std of z)^2, z = residual
    / sqrt(combined_error^2 + ref_err^2) (with the epistemic factor of ``leverage``); bins
    with fewer than ``min_per_bin`` finite rows are left out. (1, 0): no finite rows."""
    keep = np.isfinite(residual) & np.isfinite(err_net) & np.isfinite(ref_err)
    if not keep.any():
        return 1.0, 0.0
    bins = np.digitize(snr[keep], SNR_BIN_EDGES[1:-1])
    groups = [bins == b for b in np.unique(bins) if (bins == b).sum() >= min_per_bin]
    if not groups:
        return 1.0, 0.0
    r, en, ref = residual[keep], err_net[keep], ref_err[keep]
    em, chi = err_model[keep], rchi2[keep]
    lev = None if leverage is None else np.asarray(leverage)[keep]
    best, best_cost = (1.0, 0.0), np.inf
    for a in A_GRID:
        for c in C_GRID:
            z = r / np.sqrt(combined_error(en, em, chi, a, c, lev) ** 2 + ref**2)
            cost = sum(np.log(robust_std(z[g])) ** 2 for g in groups)
            if cost < best_cost:
                best, best_cost = (float(a), float(c)), cost
    return best
