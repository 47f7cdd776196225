"""Accuracy and uncertainty-calibration metrics of predicted stellar labels. numpy only.

Every function compares predictions with reference labels (APOGEE) star by star. Residuals
are ``pred - ref`` in the label's unit (K for teff, dex otherwise). Stars whose reference,
prediction or S/N is not finite are left out label by label; the ``n`` of each block says how
many stars it used.

Definitions
-----------
* ``bias``: mean residual; ``std``: standard deviation of the residuals (ddof=1).
* ``robust_std``: 1.4826 x the median absolute deviation from the median residual (the std
  of a Gaussian, insensitive to outliers).
* ``outlier_frac``: fraction of stars with ``|resid - median(resid)|`` above a threshold: the
  label's absolute threshold when one is configured (``outlier_absolute``, in K or dex),
  otherwise ``outlier_nsigma`` x ``robust_std``.
* ``z = (pred - ref) / sqrt(sigma_pred^2 + sigma_ref^2)``; ``z_std`` is its std (1 when the
  uncertainties are right), ``z_robust_std`` its robust std, ``coverage_68`` / ``coverage_95``
  the fractions with ``|z| <= 1`` and ``|z| <= 1.96`` (0.683 and 0.95 when calibrated).
  Stars with an unknown (NaN) or non-positive combined sigma are excluded from these; ``n_z``
  counts the rest.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.constants import label_unit
from desi_abundances.evaluation import mlflow_names
from desi_abundances.maths.robust import robust_std

Z_68 = 1.0
Z_95 = 1.959963984540054
"""Half-widths in sigma of the central 68.27% and 95% intervals of a unit Gaussian."""

METRIC_NAMES: tuple[str, ...] = (
    "bias",
    "std",
    "robust_std",
    "outlier_frac",
    "z_std",
    "z_robust_std",
    "coverage_68",
    "coverage_95",
)
"""Per-label scalar metrics, in the order reports list them."""

MLFLOW_METRIC_NAMES: dict[str, str] = {
    "bias": "bias",
    "std": "residual_std",
    "robust_std": "robust_std",
    "outlier_frac": "outlier_frac",
    "z_std": "z_std",
    "coverage_68": "coverage_68",
    "coverage_95": "coverage_95",
    "n": "n",
}
"""Metric key -> suffix of the flat MLflow name (``network/test/fe_h.residual_std``)."""


def residual_stats(
    residuals: np.ndarray,
    outlier_nsigma: float = 3.0,
    outlier_absolute: float | None = None,
) -> dict[str, float]:
    """Bias, std, robust std and outlier fraction of finite residuals (pred - ref).

    Args:
        residuals: 1-D residuals in the label's unit; non-finite values must be removed first.
        outlier_nsigma: outliers lie beyond this many robust std of the median residual.
        outlier_absolute: if given, an absolute threshold (K or dex) used instead.

    Returns:
        ``{n, bias, std, robust_std, outlier_frac}``; NaN statistics when there are no stars
        (std needs two).
    """
    residuals = np.asarray(residuals, dtype=np.float64)
    n = residuals.size
    if n == 0:
        return {"n": 0, "bias": math.nan, "std": math.nan, "robust_std": math.nan,
                "outlier_frac": math.nan}
    spread = robust_std(residuals)
    threshold = outlier_absolute if outlier_absolute is not None else outlier_nsigma * spread
    deviation = np.abs(residuals - np.median(residuals))
    return {
        "n": int(n),
        "bias": float(residuals.mean()),
        "std": float(residuals.std(ddof=1)) if n > 1 else math.nan,
        "robust_std": spread,
        "outlier_frac": float(np.mean(deviation > threshold)),
    }


def calibration_stats(
    pred: np.ndarray,
    ref: np.ndarray,
    sigma_pred: np.ndarray,
    sigma_ref: np.ndarray | None = None,
) -> dict[str, float]:
    """Spread and interval coverage of z = (pred - ref) / sqrt(sigma_pred^2 + sigma_ref^2).

    Args:
        pred, ref: predicted and reference labels (same unit).
        sigma_pred: 1-sigma uncertainty of the predictions.
        sigma_ref: 1-sigma uncertainty of the references; None means 0.

    Returns:
        ``{n_z, z_std, z_robust_std, coverage_68, coverage_95}``; stars with any non-finite
        input or a combined sigma <= 0 are excluded.
    """
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    sigma_pred = np.asarray(sigma_pred, dtype=np.float64)
    sigma_ref = np.zeros_like(pred) if sigma_ref is None else np.asarray(sigma_ref, np.float64)
    with np.errstate(invalid="ignore"):
        sigma = np.sqrt(sigma_pred**2 + sigma_ref**2)
        usable = np.isfinite(pred) & np.isfinite(ref) & np.isfinite(sigma) & (sigma > 0)
    z = (pred[usable] - ref[usable]) / sigma[usable]
    if z.size == 0:
        return {"n_z": 0, "z_std": math.nan, "z_robust_std": math.nan,
                "coverage_68": math.nan, "coverage_95": math.nan}
    return {
        "n_z": int(z.size),
        "z_std": float(z.std(ddof=1)) if z.size > 1 else math.nan,
        "z_robust_std": robust_std(z),
        "coverage_68": float(np.mean(np.abs(z) <= Z_68)),
        "coverage_95": float(np.mean(np.abs(z) <= Z_95)),
    }


def z_scores(
    pred: np.ndarray, ref: np.ndarray, sigma_pred: np.ndarray, sigma_ref: np.ndarray | None
) -> np.ndarray:
    """z per star (NaN where it cannot be computed), as used by :func:`calibration_stats`."""
    pred = np.asarray(pred, dtype=np.float64)
    sigma_ref = np.zeros_like(pred) if sigma_ref is None else np.asarray(sigma_ref, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.sqrt(np.asarray(sigma_pred, np.float64) ** 2 + sigma_ref**2)
        z = (pred - np.asarray(ref, np.float64)) / sigma
    z[~(np.isfinite(sigma) & (sigma > 0))] = np.nan
    return z


def label_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    sigma_pred: np.ndarray | None,
    sigma_ref: np.ndarray | None,
    snr: np.ndarray,
    snr_bin_edges: Sequence[float],
    outlier_nsigma: float = 3.0,
    outlier_absolute: float | None = None,
) -> dict[str, Any]:
    """All metrics of one label, overall and per S/N bin.

    Args:
        pred, ref: predicted and reference values, (n_stars,); NaN reference = missing.
        sigma_pred, sigma_ref: 1-sigma uncertainties or None (then no calibration stats).
        snr: median S/N per pixel of each spectrum, (n_stars,).
        snr_bin_edges: increasing bin edges; bin i holds ``edges[i] <= snr < edges[i+1]``.
        outlier_nsigma, outlier_absolute: see :func:`residual_stats`.

    Returns:
        ``{n, bias, std, robust_std, outlier_frac, n_z, z_std, z_robust_std, coverage_68,
        coverage_95, by_snr: [{snr_min, snr_max, n, bias, ...}, ...]}``.
    """
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    snr = np.asarray(snr, dtype=np.float64)
    if not (pred.shape == ref.shape == snr.shape):
        raise ValueError(
            f"pred {pred.shape}, ref {ref.shape} and snr {snr.shape} must have the same shape"
        )
    edges = np.asarray(snr_bin_edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"snr_bin_edges must be >= 2 increasing values, got {list(edges)}")
    valid = np.isfinite(pred) & np.isfinite(ref)

    def block(rows: np.ndarray) -> dict[str, Any]:
        stats: dict[str, Any] = residual_stats(
            pred[rows] - ref[rows], outlier_nsigma, outlier_absolute
        )
        if sigma_pred is not None:
            stats.update(
                calibration_stats(
                    pred[rows],
                    ref[rows],
                    np.asarray(sigma_pred, np.float64)[rows],
                    None if sigma_ref is None else np.asarray(sigma_ref, np.float64)[rows],
                )
            )
        return stats

    result = block(valid)
    result["by_snr"] = []
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = valid & np.isfinite(snr) & (snr >= low) & (snr < high)
        result["by_snr"].append({"snr_min": float(low), "snr_max": float(high), **block(in_bin)})
    return result


def evaluate_predictions(
    predictions: pd.DataFrame,
    references: pd.DataFrame,
    labels: Iterable[str],
    snr_bin_edges: Sequence[float],
    outlier_nsigma: float = 3.0,
    outlier_absolute: Mapping[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics of every label: ``{label: label_metrics(...)}``.

    Args:
        predictions: TARGETID, ``<label>`` and (optionally) ``<label>_err`` per label.
        references: TARGETID, ``snr``, ``<label>`` and ``<label>_err`` per label (APOGEE).
        labels: python label names (teff, logg, fe_h, ...).
        snr_bin_edges, outlier_nsigma: see :func:`label_metrics`.
        outlier_absolute: optional ``{label: threshold}`` in the label's unit.

    Raises:
        KeyError: when a label or TARGETID column is missing from either table.
        ValueError: when the two tables do not hold the same TARGETIDs.
    """
    for name, table in (("predictions", predictions), ("references", references)):
        if "TARGETID" not in table.columns:
            raise KeyError(f"{name} has no TARGETID column")
    if "snr" not in references.columns:
        raise KeyError("references have no 'snr' column")
    merged = references.merge(
        predictions, on="TARGETID", how="inner", suffixes=("_ref", "_pred"), validate="1:1"
    )
    if len(merged) != len(references) or len(merged) != len(predictions):
        raise ValueError(
            f"predictions ({len(predictions)} rows) and references ({len(references)} rows) "
            f"share only {len(merged)} TARGETIDs"
        )
    outlier_absolute = dict(outlier_absolute or {})
    result = {}
    for label in labels:
        for name, table in (("predictions", predictions), ("references", references)):
            if label not in table.columns:
                raise KeyError(f"{name} have no column '{label}'")
        err_pred = f"{label}_err_pred"
        err_ref = f"{label}_err_ref"
        result[label] = label_metrics(
            pred=merged[f"{label}_pred"].to_numpy(),
            ref=merged[f"{label}_ref"].to_numpy(),
            sigma_pred=merged[err_pred].to_numpy() if err_pred in merged else None,
            sigma_ref=merged[err_ref].to_numpy() if err_ref in merged else None,
            snr=merged["snr"].to_numpy(),
            snr_bin_edges=snr_bin_edges,
            outlier_nsigma=outlier_nsigma,
            outlier_absolute=outlier_absolute.get(label),
        )
    return result


def flat_metrics(
    metrics_by_method: Mapping[str, Mapping[str, Mapping[str, Any]]],
    primary_method: str = "network",
) -> dict[str, float]:
    """Flat ``{name: value}`` of the overall metrics, for MLflow (``evaluation.mlflow_names``).

    Every method's metrics are ``<method>/test/<label>.<metric>`` (``network/test/fe_h.
    residual_std``, ``ridge/test/fe_h.bias``); the primary method's headline metrics are
    repeated as ``0_headline/<method>/<metric>/<label>`` (robust_std, z_std, coverage_68), the
    first sections of MLflow's views. Non-finite values are left out (MLflow cannot plot them).
    """
    flat: dict[str, float] = {}
    for method, per_label in metrics_by_method.items():
        for label, stats in per_label.items():
            for suffix, value in finite_metrics(stats).items():
                flat[mlflow_names.label_metric(method, label, suffix)] = value
                if method == primary_method and suffix in mlflow_names.HEADLINE_METRICS:
                    flat[mlflow_names.headline_metric(method, label, suffix)] = value
    return flat


def finite_metrics(stats: Mapping[str, Any], extra: Sequence[str] = ()) -> dict[str, float]:
    """``{MLflow suffix: value}`` of one label's finite metrics: the keys of
    :data:`MLFLOW_METRIC_NAMES` under their suffixes, then the ``extra`` keys as they are
    (MLflow cannot plot NaN or inf, so those are left out)."""
    names = [*MLFLOW_METRIC_NAMES.items(), *((key, key) for key in extra)]
    return {suffix: float(stats[key]) for key, suffix in names
            if stats.get(key) is not None and np.isfinite(stats[key])}


def mlflow_metrics_history(flat: Mapping[str, float], step: int = 0) -> dict[str, dict]:
    """``{name: {"value": v, "step": step}}``: the input of kedro-mlflow's
    ``MlflowMetricsHistoryDataset``."""
    return {name: {"value": float(value), "step": int(step)} for name, value in flat.items()}


def json_safe(value: Any) -> Any:
    """A copy of nested dicts/lists with NaN and +-inf replaced by None (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def best_method_per_label(
    metrics_by_method: Mapping[str, Mapping[str, Mapping[str, Any]]],
    labels: Iterable[str],
    criterion: str = "robust_std",
) -> dict[str, str | None]:
    """Name of the method with the smallest ``criterion`` per label (None if none finite)."""
    best: dict[str, str | None] = {}
    for label in labels:
        candidates = {
            method: per_label[label].get(criterion, math.nan)
            for method, per_label in metrics_by_method.items()
            if label in per_label
        }
        finite = {m: v for m, v in candidates.items() if v is not None and np.isfinite(v)}
        best[label] = min(finite, key=finite.get) if finite else None
    return best


def format_value(value: Any, digits: int = 3) -> str:
    """A number for a Markdown table: ``digits`` significant digits, integers as they are,
    "-" for None and non-finite values."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.{digits}g}"


def summary_markdown(
    metrics_by_method: Mapping[str, Mapping[str, Mapping[str, Any]]],
    labels: Sequence[str],
    is_mock: bool,
    units: Mapping[str, str] | None = None,
    criterion: str = "robust_std",
    notes: Sequence[str] = (),
) -> str:
    """Markdown report: one row per label, robust std / bias / z std / 68% coverage / n for
    every method and the best method by ``criterion``; the title says MOCK for mock data."""
    methods = list(metrics_by_method)
    units = dict(units or {})
    best = best_method_per_label(metrics_by_method, labels, criterion)
    title = "# Test-set accuracy of the stellar labels" + (" (MOCK DATA)" if is_mock else "")
    lines = [title, ""]
    if is_mock:
        lines += [
            "**MOCK**: these numbers come from the embedded mock survey, not from DESI or "
            "APOGEE; they test the pipeline, not the science.",
            "",
        ]
    lines += [
        "Residual = method - APOGEE on the test split (same stars, spectra and masks for "
        f"every method). Best = smallest {criterion.replace('_', ' ')}. robust std = 1.4826 "
        "x MAD; z std = std of (pred - ref)/sqrt(sigma_pred^2 + sigma_ref^2) (1 = calibrated); "
        "cov68 = fraction with |z| <= 1 (0.683 nominal).",
        "",
    ]
    header = ["label", "unit"]
    for method in methods:
        header += [f"{method} robust std", f"{method} bias", f"{method} z std",
                   f"{method} cov68"]
    header += ["n", "best"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    counts = {label: 0 for label in labels}
    for label in labels:
        row = [label, units.get(label, label_unit(label))]
        for method in methods:
            stats = metrics_by_method[method].get(label, {})
            robust = format_value(stats.get("robust_std"))
            if best.get(label) == method:
                robust = f"**{robust}**"
            row += [robust, format_value(stats.get("bias")), format_value(stats.get("z_std")),
                    format_value(stats.get("coverage_68"))]
            counts[label] = max(counts[label], int(stats.get("n", 0) or 0))
        row += [str(counts[label]), best.get(label) or "-"]
        lines.append("| " + " | ".join(row) + " |")
    wins = {method: sum(1 for label in labels if best.get(label) == method) for method in methods}
    lines += ["", "Labels won: " + ", ".join(f"{m} {n}" for m, n in wins.items()) + "."]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"
