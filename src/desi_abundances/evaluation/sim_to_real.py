"""The sim-to-real gap, measured: a model bundle trained on one kind of spectra (the mock)
applied to the test stars of another (the REAL stellar-library survey), never tuned on them.

Per label: robust std, bias, z std, 68% coverage (z uses the bundle's errors and the
reference errors), the slope of the residual against the reference label (0: no scale
compression; -0.5: half the range lost) and, overall, the fraction of stars beyond the
bundle's ``ood_threshold`` (the VAC's FAR_FROM_TRAINING bit). Units: K for teff, dex
otherwise.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.constants import label_unit
from desi_abundances.evaluation import groups, methods, metrics, report
from desi_abundances.spectra import Spectra

SUMMARY_METRICS = ("robust_std", "bias", "z_std", "coverage_68", "slope")
"""The columns of the Markdown table, per label."""


def residual_slope(pred: np.ndarray, ref: np.ndarray) -> float:
    """Least-squares slope of (pred - ref) against ref on finite pairs (NaN for < 3)."""
    pred, ref = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    ok = np.isfinite(pred) & np.isfinite(ref)
    if ok.sum() < 3 or np.ptp(ref[ok]) == 0:
        return math.nan
    return float(np.polyfit(ref[ok], pred[ok] - ref[ok], 1)[0])


def apply_bundle(bundle: Any, test: Spectra, labels: Sequence[str], batch_size: int = 1024
                 ) -> pd.DataFrame:
    """The test table (``report.assemble_test_predictions`` with the network only) of
    ``bundle`` on ``test``, plus ``network_ood``."""
    network, _ = methods.network_predictions(bundle, test, labels, batch_size)
    table = report.assemble_test_predictions(test, {"network": network}, labels)
    table["network_ood"] = table["network_input_distance"].to_numpy() > float(bundle.ood_threshold)
    return table


def gap_report(table: pd.DataFrame, labels: Sequence[str], bundle: Any,
               settings: Mapping[str, Any]) -> dict[str, Any]:
    """``{n_test, bundle_is_mock, ood_threshold, ood_fraction, network: {label: stats +
    slope}, by_group: {network: {label: {group: stats}}}}`` (strict JSON)."""
    labels = list(labels)
    frames = report.method_frames(table, labels)
    per_label = metrics.evaluate_predictions(frames["network"], frames[report.REFERENCE], labels,
                                             snr_bin_edges=[-np.inf, np.inf])
    for label, stats in per_label.items():
        stats.pop("by_snr", None)
        stats["slope"] = residual_slope(table[f"network_{label}"], table[f"{report.REFERENCE}_{label}"])
    ref = frames[report.REFERENCE]
    by_group = groups.group_metrics({"network": frames["network"]}, ref, labels,
                                    groups.active_groups(labels, settings.get("groups")))
    return metrics.json_safe({
        "n_test": int(len(table)),
        "bundle_is_mock": bool(getattr(bundle, "is_mock", False)),
        "ood_threshold": float(bundle.ood_threshold),
        "ood_fraction": float(np.mean(table["network_ood"].to_numpy(bool))),
        "network": per_label,
        "by_group": by_group,
    })


def flat_gap_metrics(content: Mapping[str, Any]) -> dict[str, float]:
    """MLflow metrics ``sim_to_real/<label>.<metric>`` and ``sim_to_real/ood_fraction``."""
    flat = {"sim_to_real/ood_fraction": float(content["ood_fraction"])}
    for label, stats in content["network"].items():
        for suffix, value in metrics.finite_metrics(stats, extra=("slope",)).items():
            flat[f"sim_to_real/{label}.{suffix}"] = value
    return flat


def markdown(content: Mapping[str, Any], labels: Sequence[str], data_name: str = "",
             reference: Mapping[str, Any] | None = None) -> str:
    """The sim-to-real section; ``reference`` (the evaluation's metrics.json on the same
    test stars) adds the robust std of the network trained on the real stars, for scale."""
    kind = "MOCK-trained" if content.get("bundle_is_mock") else "given"
    title = "# Sim-to-real gap" + (f" - {data_name}" if data_name else "")
    lines = [title, "",
             f"The {kind} model bundle applied, untouched, to the {content['n_test']} test stars "
             "of the real-star survey. slope: of (pred - ref) against ref (0: no compression).",
             "", "| label | unit | " + " | ".join(n.replace("_", " ") for n in SUMMARY_METRICS)
             + (" | trained on real stars: robust std |" if reference else " |"),
             "|" + "---|" * (2 + len(SUMMARY_METRICS) + (1 if reference else 0))]
    for label in labels:
        stats = content["network"][label]
        row = [label, label_unit(label)] + [metrics.format_value(stats.get(n)) for n in SUMMARY_METRICS]
        if reference:
            row.append(metrics.format_value(reference.get("network", {}).get(label, {}).get("robust_std")))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"Beyond the bundle's out-of-distribution threshold "
              f"({content['ood_threshold']:.3g}): {content['ood_fraction']:.1%}.", ""]
    section = groups.markdown(content["by_group"], list(labels),
                              title="## By star group (sim-to-real, network)")
    return "\n".join(lines) + ("\n" + section if section else "")
