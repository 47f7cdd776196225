"""k-fold cross-validation of the three methods (network, ridge, The Cannon) on one set of
training spectra, and the runner it shares with the transfer test (:func:`run_split`).

Each fold is the test split once (``nn.splits.fold_split``): the pixel standardisation is
fitted on its train split, the network trained with the training parameters (early stopping
on its validation split), ridge and The Cannon fitted as in the evaluation pipeline, and the
three predict the fold's stars. Every star is predicted once, out of fold; the report gives,
per method and label, the mean and the spread (std over folds, ddof=1) of the per-fold
metrics and the metrics of the pooled out-of-fold predictions (with the star groups).
Units: K for teff, dex otherwise.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.constants import label_unit
from desi_abundances.evaluation import groups, methods, metrics, report, split
from desi_abundances.nn.data import fit_pixel_standardisation
from desi_abundances.nn.model import fit_label_model
from desi_abundances.nn.splits import fold_split
from desi_abundances.spectra import Spectra

logger = logging.getLogger(__name__)

CV_METRICS = ("robust_std", "bias", "z_std", "coverage_68", "outlier_frac")
"""Per-fold metrics whose mean and spread the report gives."""


def run_split(spectra: Spectra, data_split: pd.DataFrame, labels: Sequence[str],
              training: Mapping[str, Any], settings: Mapping[str, Any], min_iqr: float = 1e-3
              ) -> tuple[pd.DataFrame, Any]:
    """Train the network and the two peers on ``data_split``'s train (and validation) stars
    and predict its test stars.

    Returns:
        the test table of ``report.assemble_test_predictions`` plus ``network_ood`` (input
        distance above the bundle's ``ood_threshold``: the VAC's FAR_FROM_TRAINING bit), and
        the trained bundle.
    """
    labels = list(labels)
    train, validation, test = split.split_spectra(spectra, data_split)
    standardisation = fit_pixel_standardisation(train, min_iqr=float(min_iqr))
    bundle, _, _ = fit_label_model(spectra, data_split, standardisation, labels, dict(training))
    network, _ = methods.network_predictions(bundle, test, labels,
                                             int(settings.get("network", {}).get("batch_size", 1024)))
    ridge, _ = methods.ridge_predictions(train, validation, test, labels,
                                         settings.get("ridge", {}), bundle)
    cannon, _ = methods.cannon_predictions(train, test, labels, settings.get("cannon", {}),
                                           seed=int(settings.get("seed", 0)))
    table = report.assemble_test_predictions(
        test, {"network": network, "ridge": ridge, "cannon": cannon}, labels)
    table["network_ood"] = table["network_input_distance"].to_numpy() > float(bundle.ood_threshold)
    return table, bundle


def table_metrics(table: pd.DataFrame, labels: Sequence[str], settings: Mapping[str, Any]
                  ) -> dict[str, dict[str, dict[str, Any]]]:
    """``{method: {label: stats}}`` of a test table on the common stars (no S/N bins)."""
    labels = list(labels)
    frames = report.method_frames(report.common_stars(table, labels), labels)
    outliers = settings.get("outliers", {}) or {}
    out = {}
    for method in report.METHODS:
        per_label = metrics.evaluate_predictions(
            frames[method], frames[report.REFERENCE], labels, snr_bin_edges=[-np.inf, np.inf],
            outlier_nsigma=float(outliers.get("nsigma", 3.0)),
            outlier_absolute=outliers.get("absolute") or {})
        for stats in per_label.values():
            stats.pop("by_snr", None)
        out[method] = per_label
    return out


def fold_spread(per_fold: Sequence[Mapping[str, Mapping[str, Mapping[str, Any]]]],
                labels: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {label: {metric: mean, metric_fold_std: std}}}`` over the folds' metrics
    (:data:`CV_METRICS`; std with ddof=1, NaN for one fold; NaN folds left out)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for method in report.METHODS:
        out[method] = {}
        for label in labels:
            entry = {}
            for name in CV_METRICS:
                values = np.array([fold[method][label].get(name, math.nan) for fold in per_fold],
                                  np.float64)
                values = values[np.isfinite(values)]
                entry[name] = float(values.mean()) if values.size else math.nan
                entry[f"{name}_fold_std"] = float(values.std(ddof=1)) if values.size > 1 else math.nan
            out[method][label] = entry
    return out


def cross_validate(spectra: Spectra, folds: pd.DataFrame, labels: Sequence[str],
                   training: Mapping[str, Any], settings: Mapping[str, Any],
                   validation_fraction: float = 0.15, min_iqr: float = 1e-3
                   ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every fold of ``folds`` (``nn.splits.stratified_folds``) as the test split once.

    Returns:
        the pooled out-of-fold test table (column ``fold``) and the report
        ``{n_folds, n_stars, folds: [...], spread: fold_spread, pooled: {method: {label:
        stats}}, pooled_ood_fraction, by_group: {method: {label: {group: stats}}}}``.
    """
    labels = list(labels)
    tables, per_fold, fold_info = [], [], []
    for fold in sorted(int(f) for f in folds["fold"].unique()):
        data_split = fold_split(folds, fold, validation_fraction)
        counts = data_split["split"].value_counts().to_dict()
        logger.info("cross-validation fold %d: %s", fold, counts)
        table, _ = run_split(spectra, data_split, labels, training, settings, min_iqr)
        table["fold"] = fold
        tables.append(table)
        per_fold.append(table_metrics(table, labels, settings))
        fold_info.append({"fold": fold, "n": {k: int(v) for k, v in counts.items()},
                          "ood_fraction": float(table["network_ood"].mean())})
    pooled = pd.concat(tables, ignore_index=True)
    content = {
        "n_folds": len(tables),
        "n_stars": int(len(pooled)),
        "validation_fraction": float(validation_fraction),
        "folds": fold_info,
        "per_fold": per_fold,
        "spread": fold_spread(per_fold, labels),
        "pooled": table_metrics(pooled, labels, settings),
        "pooled_ood_fraction": float(pooled["network_ood"].mean()),
        "by_group": groups.table_group_metrics(pooled, labels, settings),
    }
    return pooled, metrics.json_safe(content)


def flat_cv_metrics(content: Mapping[str, Any]) -> dict[str, float]:
    """MLflow metrics ``<method>/cv/<label>.<metric>`` (fold mean), ``..._fold_std`` and
    ``<method>/cv_pooled/<label>.<metric>``, ``<method>/cv_<group>/<label>.<metric>``,
    ``network/cv/ood_fraction``; finite values only."""
    flat: dict[str, float] = {}
    for method, per_label in content["spread"].items():
        for label, entry in per_label.items():
            for name, value in entry.items():
                if value is not None and np.isfinite(value):
                    flat[f"{method}/cv/{label}.{name}"] = float(value)
    for method, per_label in content["pooled"].items():
        for label, stats in per_label.items():
            for suffix, value in metrics.finite_metrics(stats).items():
                flat[f"{method}/cv_pooled/{label}.{suffix}"] = value
    flat.update(groups.flat_group_metrics(content["by_group"], split="cv"))
    if content.get("pooled_ood_fraction") is not None:
        flat["network/cv/ood_fraction"] = float(content["pooled_ood_fraction"])
    return flat


def _cell(entry: Mapping[str, Any], name: str) -> str:
    mean, spread = entry.get(name), entry.get(f"{name}_fold_std")
    if spread is None:
        return metrics.format_value(mean)
    return f"{metrics.format_value(mean)} +- {metrics.format_value(spread, 2)}"


def markdown(content: Mapping[str, Any], labels: Sequence[str], data_name: str = "") -> str:
    """The cross-validation section: per label and method the fold mean +- spread of robust
    std, bias and z std, the pooled robust std, the winner; then the star groups."""
    title = "# k-fold cross-validation" + (f" - {data_name}" if data_name else "")
    lines = [title, "",
             f"{content['n_folds']} stratified folds, {content['n_stars']} stars, each predicted "
             f"once out of fold (validation {content['validation_fraction']:.0%} of the stars, "
             "from the other folds). Cells: mean over folds +- std over folds. Pooled: the "
             "out-of-fold predictions of all folds together. Residual = method - literature.",
             "", "| label | unit | method | robust std | bias | z std | cov68 | pooled robust std |",
             "|---|---|---|---|---|---|---|---|"]
    for label in labels:
        pooled = {m: content["pooled"][m][label].get("robust_std") for m in report.METHODS}
        finite = {m: v for m, v in pooled.items() if v is not None and np.isfinite(v)}
        best = min(finite, key=finite.get) if finite else None
        for method in report.METHODS:
            entry = content["spread"][method][label]
            name = f"**{method}**" if method == best else method
            lines.append(f"| {label} | {label_unit(label)} | {name} | "
                         f"{_cell(entry, 'robust_std')} | {_cell(entry, 'bias')} | "
                         f"{_cell(entry, 'z_std')} | {_cell(entry, 'coverage_68')} | "
                         f"{metrics.format_value(pooled[method])} |")
    lines += ["", f"Network stars beyond the out-of-distribution threshold (pooled): "
              f"{content['pooled_ood_fraction']:.1%}.", ""]
    section = groups.markdown(content["by_group"], list(labels),
                              title="## By star group (pooled out-of-fold predictions)")
    return "\n".join(lines) + ("\n" + section if section else "")
