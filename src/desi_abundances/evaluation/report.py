"""The evaluation's tables and reports: one row per test star with every method's labels,
the per-label common stars, the metrics of each method and the Markdown summary.

Residuals are method - APOGEE on the test split; per label only the stars every method
predicts are scored (:func:`common_stars`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.evaluation import metrics, mlflow_names
from desi_abundances.spectra import Spectra

METHODS = ("network", "ridge", "cannon")
"""The methods compared, in report order."""

REFERENCE = "apogee"
"""Column prefix of the reference labels in the test table."""


def assemble_test_predictions(test: Spectra, predictions: Mapping[str, pd.DataFrame],
                              labels: Sequence[str]) -> pd.DataFrame:
    """One row per test star: TARGETID, snr, ``apogee_<label>`` / ``apogee_<label>_err`` and
    ``<method>_<column>`` for each predictions frame (``{"network": ..., "ridge": ...,
    "cannon": ...}``; e.g. ``network_input_distance``, ``cannon_chi2_reduced``).

    Raises:
        ValueError: when a method's predictions do not cover exactly the test stars.
    """
    meta = test.meta.reset_index(drop=True)
    table = pd.DataFrame({"TARGETID": meta["TARGETID"].to_numpy(),
                          "snr": meta["snr"].to_numpy(np.float64)})
    for label in labels:
        table[f"{REFERENCE}_{label}"] = meta[label].to_numpy(np.float64)
        err = f"{label}_err"
        table[f"{REFERENCE}_{err}"] = (
            meta[err].to_numpy(np.float64) if err in meta else np.full(len(meta), np.nan)
        )
    for method, frame in predictions.items():
        if len(frame) != len(table) or set(frame["TARGETID"]) != set(table["TARGETID"]):
            raise ValueError(f"{method} predictions do not cover the {len(table)} test stars")
        renamed = frame.rename(columns={c: f"{method}_{c}" for c in frame.columns
                                        if c != "TARGETID"})
        table = table.merge(renamed, on="TARGETID", how="left", validate="1:1")
    return table


def common_stars(table: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Copy of ``table`` where, per label, a prediction is NaN unless every method that
    predicts the label at all has a finite value for that star: all methods are then scored
    on the same stars (a method that does not model a label, e.g. a label the Cannon drops,
    is ignored for it)."""
    table = table.copy()
    for label in labels:
        columns = [f"{m}_{label}" for m in METHODS if f"{m}_{label}" in table]
        active = [c for c in columns if table[c].notna().any()]
        if not active:
            continue
        shared = np.all(np.isfinite(table[active].to_numpy(np.float64)), axis=1)
        for column in active:
            table.loc[~shared, column] = np.nan
            if f"{column}_err" in table:
                table.loc[~shared, f"{column}_err"] = np.nan
    return table


def method_frames(table: pd.DataFrame, labels: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per method (and the reference): TARGETID, ``<label>``, ``<label>_err`` (and snr for
    the reference), from the test table's prefixed columns."""
    frames = {}
    for method in (REFERENCE,) + METHODS:
        columns = {"TARGETID": "TARGETID"}
        if method == REFERENCE:
            columns["snr"] = "snr"
        for label in labels:
            for suffix in ("", "_err"):
                name = f"{method}_{label}{suffix}"
                if name in table:
                    columns[name] = f"{label}{suffix}"
        frames[method] = table[list(columns)].rename(columns=columns)
    return frames


def _notes(ridge_info: Mapping[str, Any], cannon_info: Mapping[str, Any]) -> list[str]:
    notes = []
    if cannon_info.get("enabled") and cannon_info.get("labels_not_modelled"):
        notes.append("The Cannon does not model " + ", ".join(cannon_info["labels_not_modelled"])
                     + " (too many missing training labels or excluded by parameters).")
    if ridge_info.get("enabled"):
        notes.append("Ridge uncertainties are the validation robust std per label (the same "
                     "for every star; they include APOGEE's noise).")
    if cannon_info.get("enabled"):
        notes.append(
            f"The Cannon: {cannon_info['n_train']} training stars with complete labels, "
            f"{cannon_info['n_terms']} terms, trained in {cannon_info['train_seconds']:.0f} s; "
            f"uncertainties from the inverse Hessian (formal)."
        )
    return notes


def metrics_report(test_predictions: pd.DataFrame, labels: Sequence[str],
                   settings: Mapping[str, Any], is_mock: bool, network_seconds: float,
                   ridge_info: Mapping[str, Any], cannon_info: Mapping[str, Any]
                   ) -> tuple[dict[str, Any], dict[str, float], str]:
    """Metrics of every method on the common stars, their flat form and the Markdown.

    Args:
        settings: ``evaluation`` (snr_bin_edges, outliers, best_criterion).

    Returns:
        ``metrics.json`` content ``{"network": {label: {...}}, "ridge": ..., "cannon": ...,
        "meta": {...}}`` (strict JSON: NaN -> null), flat MLflow metrics
        (``network/test/fe_h.robust_std``, ``0_headline/network/robust_std/fe_h``, ``ridge/test/labels_won``, ...) and the Markdown text.
    """
    labels = list(labels)
    outliers = settings.get("outliers", {})
    frames = method_frames(common_stars(test_predictions, labels), labels)
    per_method = {
        method: metrics.evaluate_predictions(
            frames[method], frames[REFERENCE], labels,
            snr_bin_edges=settings["snr_bin_edges"],
            outlier_nsigma=float(outliers.get("nsigma", 3.0)),
            outlier_absolute=outliers.get("absolute") or {},
        )
        for method in METHODS
    }
    criterion = settings.get("best_criterion", "robust_std")
    best = metrics.best_method_per_label(per_method, labels, criterion)
    meta = {
        "is_mock": bool(is_mock),
        "n_test": int(len(test_predictions)),
        "snr_bin_edges": list(settings["snr_bin_edges"]),
        "outliers": outliers,
        "best_criterion": criterion,
        "best_method": best,
        "layout": "method -> label -> metrics (residual = method - APOGEE, test split; per "
                  "label only stars every method predicts)",
        "network": {"seconds": network_seconds},
        "ridge": ridge_info,
        "cannon": cannon_info,
    }
    report = {**per_method, "meta": meta}
    flat = metrics.flat_metrics(per_method, primary_method="network")
    for method in METHODS:
        won = sum(v == method for v in best.values())
        flat[mlflow_names.method_metric(method, "labels_won")] = float(won)
    markdown = metrics.summary_markdown(per_method, labels, is_mock, criterion=criterion,
                                        notes=_notes(ridge_info, cannon_info))
    if settings.get("data_label"):  # e.g. REAL stellar-library spectra (conf/real_stars)
        meta["data_label"] = str(settings["data_label"])
        markdown = labelled_summary(markdown, settings["data_label"], settings.get("data_tag", "REAL"))
    return metrics.json_safe(report), flat, markdown


def labelled_summary(markdown: str, data_label: str, data_tag: str) -> str:
    """The summary with its data named under the title (``# ... (REAL)`` then the label)."""
    title, _, rest = markdown.partition("\n")
    return f"{title} ({data_tag})\n\n**{data_label}**\n{rest}"
