"""Metrics by star group (dwarfs, giants, metal-poor), chosen by the REFERENCE labels.

A group is a set of cuts on reference labels, ``{label: [low, high]}`` (``low <= ref < high``;
null = open). The defaults (:data:`DEFAULT_GROUPS`): dwarfs log g >= 3.5, giants log g < 3.5,
metal-poor [Fe/H] < -1. A group whose cut label is not evaluated is left out. The metrics
are those of ``metrics.evaluate_predictions`` on the group's stars (without the S/N bins),
stored as ``<method>.<label>.by_group.<group>`` in metrics.json and logged to MLflow as
``<method>/test_<group>/<label>.<metric>``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.constants import label_unit
from desi_abundances.evaluation import metrics, report

DEFAULT_GROUPS: dict[str, dict[str, list[float | None]]] = {
    "dwarfs": {"logg": [3.5, None]},
    "giants": {"logg": [None, 3.5]},
    "metal_poor": {"fe_h": [None, -1.0]},
}
"""Group name -> cuts on the reference labels (log g in dex, [Fe/H] in dex)."""

GROUP_TEXT = {"dwarfs": "dwarfs (log g >= 3.5)", "giants": "giants (log g < 3.5)",
              "metal_poor": "metal-poor ([Fe/H] < -1)"}
"""How the Markdown names the default groups."""

SUMMARY_METRICS = ("robust_std", "bias", "z_std")
"""Per method, the columns of the Markdown table."""


def group_rows(reference: pd.DataFrame, cuts: Mapping[str, Sequence[float | None]]) -> np.ndarray:
    """Boolean row mask: stars whose reference labels pass every cut (NaN fails)."""
    inside = np.ones(len(reference), dtype=bool)
    for label, (low, high) in cuts.items():
        values = reference[label].to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(values)
            if low is not None:
                ok &= values >= float(low)
            if high is not None:
                ok &= values < float(high)
        inside &= ok
    return inside


def active_groups(labels: Sequence[str], groups: Mapping[str, Mapping] | None = None
                  ) -> dict[str, dict]:
    """The groups (default :data:`DEFAULT_GROUPS`) whose cut labels are all in ``labels``."""
    groups = DEFAULT_GROUPS if groups is None else groups
    return {name: dict(cuts) for name, cuts in groups.items() if set(cuts) <= set(labels)}


def group_metrics(frames: Mapping[str, pd.DataFrame], reference: pd.DataFrame,
                  labels: Sequence[str], groups: Mapping[str, Mapping],
                  outlier_nsigma: float = 3.0,
                  outlier_absolute: Mapping[str, float] | None = None) -> dict[str, dict]:
    """``{method: {label: {group: stats}}}`` for the method frames of
    ``report.method_frames`` (TARGETID, ``<label>``, ``<label>_err``) and the reference frame
    (TARGETID, snr, labels), all row-matched."""
    out: dict[str, dict] = {method: {label: {} for label in labels} for method in frames}
    for group, cuts in groups.items():
        rows = group_rows(reference, cuts)
        for method, frame in frames.items():
            per_label = metrics.evaluate_predictions(
                frame[rows], reference[rows], labels, snr_bin_edges=[-np.inf, np.inf],
                outlier_nsigma=outlier_nsigma, outlier_absolute=outlier_absolute)
            for label, stats in per_label.items():
                stats.pop("by_snr", None)
                out[method][label][group] = stats
    return out


def attach(report: dict[str, Any], by_group: Mapping[str, Mapping]) -> dict[str, Any]:
    """metrics.json content with ``by_group`` added to every method's label block."""
    for method, per_label in by_group.items():
        for label, groups in per_label.items():
            if label in report.get(method, {}):
                report[method][label]["by_group"] = metrics.json_safe(groups)
    return report


def group_metric_name(method: str, group: str, label: str, metric: str) -> str:
    """``<method>/test_<group>/<label>.<metric>`` (e.g. ``network/test_giants/logg.robust_std``)."""
    return f"{method}/test_{group}/{label}.{metric}"


def flat_group_metrics(by_group: Mapping[str, Mapping], split: str = "test") -> dict[str, float]:
    """Flat finite MLflow metrics of :func:`group_metrics` (metric suffixes of
    ``metrics.MLFLOW_METRIC_NAMES``); ``split`` replaces ``test`` in the section name."""
    flat: dict[str, float] = {}
    for method, per_label in by_group.items():
        for label, groups in per_label.items():
            for group, stats in groups.items():
                for suffix, value in metrics.finite_metrics(stats).items():
                    name = group_metric_name(method, group, label, suffix)
                    flat[name.replace("/test_", f"/{split}_", 1)] = value
    return flat


def markdown(by_group: Mapping[str, Mapping], labels: Sequence[str],
             title: str = "## By star group (test split)", note: str = "") -> str:
    """A Markdown section: one row per label and group, robust std / bias / z std per method
    and the number of stars; the group is chosen by the reference labels."""
    methods = list(by_group)
    if not methods or not any(by_group[m].get(label) for m in methods for label in labels):
        return ""
    header = ["label", "unit", "group", "n"]
    for method in methods:
        header += [f"{method} {name.replace('_', ' ')}" for name in SUMMARY_METRICS]
    lines = [title, "", note or "Groups by the reference labels: " + "; ".join(
        GROUP_TEXT.get(g, g) for g in by_group[methods[0]][labels[0]]) + ".", "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label in labels:
        for group in by_group[methods[0]].get(label, {}):
            n = max(int(by_group[m][label][group].get("n", 0) or 0) for m in methods)
            row = [label, label_unit(label), GROUP_TEXT.get(group, group), str(n)]
            for method in methods:
                stats = by_group[method][label][group]
                row += [metrics.format_value(stats.get(name, math.nan)) for name in SUMMARY_METRICS]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def table_group_metrics(table: pd.DataFrame, labels: Sequence[str],
                        settings: Mapping[str, Any], methods: Sequence[str] = report.METHODS
                        ) -> dict[str, dict]:
    """:func:`group_metrics` of a test-predictions table (``report.assemble_test_predictions``)
    on the stars every method predicts (``report.common_stars``), with the groups of
    ``settings["groups"]`` (default :data:`DEFAULT_GROUPS`) and its outlier settings."""
    labels = list(labels)
    frames = report.method_frames(report.common_stars(table, labels), labels)
    outliers = settings.get("outliers", {}) or {}
    return group_metrics({m: frames[m] for m in methods if m in frames}, frames[report.REFERENCE],
                         labels, active_groups(labels, settings.get("groups")),
                         float(outliers.get("nsigma", 3.0)), outliers.get("absolute") or {})
