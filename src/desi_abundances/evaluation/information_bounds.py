"""The Cramer-Rao bound of each star from a Jacobian provider, and the network's scatter in
units of that bound per label and S/N range (numbers only; ``plots.information_limit``
draws them, ``information_limit`` assembles the report).

Units: teff K, logg dex, abundances dex; S/N per pixel.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.constants import label_unit
from desi_abundances.evaluation import mlflow_names
from desi_abundances.evaluation.cramer_rao import cramer_rao_from_fisher, fisher_matrix
from desi_abundances.evaluation.jacobians import FluxJacobianProvider, complete_rows
from desi_abundances.maths.robust import robust_std

NO_INFORMATION = "no information"
"""Status of a label whose bound is infinite (the spectrum does not respond to it)."""


# --- bounds --------------------------------------------------------------------------------
def cramer_rao_bounds(provider: FluxJacobianProvider, labels: pd.DataFrame, ivar: np.ndarray,
                      fisher_labels: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Marginalised CRB (n_stars, len(fisher_labels)), label units; inf where the spectrum
    carries no information on a label; NaN for stars whose labels are incomplete.

    Args:
        labels: evaluation labels (:func:`evaluation_labels`), one row per star.
        ivar: (n_stars, n_pixels) inverse variance of the normalised flux on the provider's
            pixels, 0 at masked pixels.
        fisher_labels: the labels in the Fisher matrix (marginalised over one another).
    """
    ivar = np.asarray(ivar, dtype=np.float64)
    if ivar.shape != (len(labels), provider.wavelength.size):
        raise ValueError(f"ivar {ivar.shape} does not match {len(labels)} stars x "
                         f"{provider.wavelength.size} pixels")
    bounds = np.full((len(labels), len(fisher_labels)), np.nan)
    usable = np.flatnonzero(complete_rows(labels))
    for start in range(0, usable.size, batch_size):
        rows = usable[start : start + batch_size]
        jac = provider.jacobian(labels.iloc[rows], fisher_labels)
        marginal, _ = cramer_rao_from_fisher(fisher_matrix(jac, ivar[rows]))
        bounds[rows] = marginal
    return bounds


# --- S/N windows and ratios ----------------------------------------------------------------
def _edge_text(value: float) -> str:
    return f"{value:g}".replace(".", "p")


def snr_windows(bin_edges: Sequence[float], windows: Mapping[str, Sequence[float]] | None = None
                ) -> list[dict[str, Any]]:
    """The S/N ranges to report: each bin of ``bin_edges`` (named ``snr_<lo>_<hi>``, the
    last open one ``snr_<lo>_up`` when its edge is >= 1e5) and the named centred
    ``windows`` ({name: [lo, hi]}). A range holds lo <= snr < hi."""
    out = []
    edges = [float(e) for e in bin_edges]
    for lo, hi in zip(edges[:-1], edges[1:]):
        upper = "up" if hi >= 1e5 else _edge_text(hi)
        out.append({"name": f"snr_{_edge_text(lo)}_{upper}", "snr_min": lo, "snr_max": hi,
                    "kind": "bin"})
    for name, (lo, hi) in (windows or {}).items():
        if not float(lo) < float(hi):
            raise ValueError(f"evaluation.cramer_rao.snr_windows.{name}: {lo} >= {hi}")
        out.append({"name": str(name), "snr_min": float(lo), "snr_max": float(hi),
                    "kind": "window"})
    return out


def median_with_inf(values: np.ndarray) -> float:
    """Median of values that may hold +inf (np.median warns on inf - inf); NaN if empty."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    if ordered.size == 0:
        return math.nan
    lo, hi = ordered[(ordered.size - 1) // 2], ordered[ordered.size // 2]
    return float(lo if lo == hi else 0.5 * (lo + hi))


def bootstrap_robust_std(values: np.ndarray, rng: np.random.Generator, n_resamples: int = 200
                         ) -> tuple[float, float]:
    """16th and 84th percentiles of the robust std over bootstrap resamples of ``values``:
    the 68% interval of a scatter measured on few stars."""
    if values.size < 2 or n_resamples < 2:
        return math.nan, math.nan
    draws = values[rng.integers(0, values.size, (n_resamples, values.size))]
    scatter = robust_std(draws, axis=1)
    low, high = np.percentile(scatter, [16.0, 84.0])
    return float(low), float(high)


MIN_STARS_INTERVAL = 30
"""Fewest stars for a bootstrap interval of a scatter: below it the resampled robust std is
dominated by repeated draws (its 16-84th percentiles can exclude the scatter itself, e.g.
"1.9 (0.51-1.4)" over 10 stars), so no interval is reported."""


def window_ratio(residual: np.ndarray, reference_error: np.ndarray, bound: np.ndarray,
                 min_stars: int, reference_value: np.ndarray | None = None,
                 rng: np.random.Generator | None = None,
                 min_stars_interval: int = MIN_STARS_INTERVAL) -> dict[str, Any]:
    """Network scatter over the median bound in one S/N range.

    Args:
        residual: network - APOGEE of the stars in the range (NaN = not predicted).
        reference_error: APOGEE's quoted errors of those stars.
        bound: their CRBs (NaN = not computed, inf = no information).
        reference_value: APOGEE's labels of those stars: their robust spread is the scatter
            of a method that always answers the population's median. A scatter BELOW the
            bound is possible only for a biased method that leans on the training
            population (the bound holds for unbiased estimators): when that scatter is close
            to this spread, the network is returning the prior, not reading the spectrum.
        rng: for the bootstrap interval of the ratio (seeded; default seed 0).
        min_stars_interval: fewer stars with a residual: no interval (``ratio_68`` None).

    Returns:
        n_scatter, network_robust_std (1.4826 MAD), apogee_error_rms, network_scatter_net_of_apogee
        (sqrt(max(robust_std^2 - apogee_rms^2, 0))), apogee_label_robust_std, n_bound,
        median_crb, ratio, ratio_68 (bootstrap 16-84th percentiles of the ratio, from the
        scatter's resampling; None under ``min_stars_interval`` stars), ratio_net_of_apogee and status: "ok", "no information" or
        "too few stars".
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    if reference_value is None:
        reference_value = np.full(len(residual), np.nan)
    finite = np.isfinite(residual)
    scatter = robust_std(residual[finite]) if finite.sum() >= min_stars else math.nan
    known_reference = reference_value[np.isfinite(reference_value)]
    spread = robust_std(known_reference) if known_reference.size >= min_stars else math.nan
    errors = reference_error[finite & np.isfinite(reference_error)]
    apogee_rms = float(np.sqrt(np.mean(errors**2))) if errors.size else math.nan
    net = (math.sqrt(max(scatter**2 - apogee_rms**2, 0.0))
           if np.isfinite(scatter) and np.isfinite(apogee_rms) else math.nan)
    known = bound[~np.isnan(bound)]
    median_bound = median_with_inf(known) if known.size >= min_stars else math.nan
    if known.size >= min_stars and np.isinf(median_bound):
        status = NO_INFORMATION
    elif np.isfinite(scatter) and np.isfinite(median_bound):
        status = "ok"
    else:
        status = "too few stars"
    ok = status == "ok"
    with_interval = ok and finite.sum() >= min_stars_interval
    interval = (bootstrap_robust_std(residual[finite], rng) if with_interval
                else (math.nan, math.nan))
    return {
        "n_scatter": int(finite.sum()),
        "network_robust_std": scatter,
        "apogee_error_rms": apogee_rms,
        "network_scatter_net_of_apogee": net,
        "apogee_label_robust_std": spread,
        "n_bound": int(known.size),
        "median_crb": median_bound if np.isfinite(median_bound) else None,
        "ratio": scatter / median_bound if ok else math.nan,
        "ratio_68": ([interval[0] / median_bound, interval[1] / median_bound]
                     if with_interval else None),
        "ratio_net_of_apogee": net / median_bound if ok else math.nan,
        "status": status,
    }


def information_ratios(test_predictions: pd.DataFrame, bounds: pd.DataFrame,
                       labels: Sequence[str], windows: Sequence[Mapping[str, Any]],
                       min_stars: int = 10, method: str = "network", seed: int = 0,
                       min_stars_interval: int = MIN_STARS_INTERVAL
                       ) -> dict[str, Any]:
    """Per label and S/N range: the method's robust scatter against APOGEE (all test stars
    in the range it predicts) over the median CRB (the stars with a bound in the range).

    Args:
        test_predictions: the evaluation's table (TARGETID, snr, apogee_<label>,
            apogee_<label>_err, <method>_<label>).
        bounds: TARGETID, snr and ``<label>_crb`` per bounded star.

    Returns:
        {label: {"unit", "no_information" (bool: infinite bound for most stars everywhere),
        "by_snr": {window name: :func:`window_ratio`}}}.
    """
    rng = np.random.default_rng(seed)
    snr = test_predictions["snr"].to_numpy(np.float64)
    bound_snr = bounds["snr"].to_numpy(np.float64)
    out: dict[str, Any] = {}
    for label in labels:
        reference = test_predictions[f"apogee_{label}"].to_numpy(np.float64)
        residual = test_predictions[f"{method}_{label}"].to_numpy(np.float64) - reference
        error_column = f"apogee_{label}_err"
        error = (test_predictions[error_column].to_numpy(np.float64)
                 if error_column in test_predictions else np.full(len(residual), np.nan))
        bound = bounds[f"{label}_crb"].to_numpy(np.float64)
        by_snr = {}
        for window in windows:
            inside = (snr >= window["snr_min"]) & (snr < window["snr_max"])
            bound_inside = (bound_snr >= window["snr_min"]) & (bound_snr < window["snr_max"])
            by_snr[window["name"]] = window_ratio(residual[inside], error[inside],
                                                  bound[bound_inside], min_stars,
                                                  reference_value=reference[inside], rng=rng,
                                                  min_stars_interval=min_stars_interval)
        known = bound[~np.isnan(bound)]
        out[label] = {
            "unit": label_unit(label),
            "no_information": bool(known.size and np.isinf(median_with_inf(known))),
            "by_snr": by_snr,
        }
    return out


def mlflow_metrics(ratios: Mapping[str, Any], windows: Sequence[Mapping[str, Any]]
                   ) -> dict[str, float]:
    """Flat finite metrics (few enough for MLflow's one-call-per-metric logging), named by
    ``evaluation.mlflow_names``: ``network/crb_ratio/<label>.<range>`` for every S/N bin and
    window, and ``network/crb_ratio_net_of_apogee/<label>.<range>`` and
    ``information_limit/crb_median/<label>.<range>`` for the centred windows (``<range>``:
    ``snr_bin_20-40`` or ``snr_window_15-25``). Ranges without a ratio (no information, too
    few stars) are left out."""
    by_name = {w["name"]: w for w in windows}
    flat: dict[str, float] = {}
    for label, entry in ratios.items():
        for window, values in entry["by_snr"].items():
            if values["status"] != "ok":
                continue
            keys = [("ratio", "crb_ratio")]
            if by_name[window]["kind"] == "window":
                keys += [("ratio_net_of_apogee", "crb_ratio_net_of_apogee"),
                         ("median_crb", "crb_median")]
            range_name = mlflow_names.snr_range(by_name[window])
            for key, name in keys:
                value = values[key]
                if value is not None and np.isfinite(value):
                    flat[mlflow_names.information_metric(name, label, range_name)] = float(value)
    return flat
