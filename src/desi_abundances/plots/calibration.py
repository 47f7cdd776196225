"""Uncertainty calibration and method comparison figures (test split). matplotlib only.

Same table as ``plots.evaluation`` (``test_predictions``); weak labels (``weak``:
``evaluation.weak_labels``) are marked on their panels and ticks.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from desi_abundances.evaluation.metrics import Z_95, z_scores
from desi_abundances.plots.axes import WEAK_COLOUR, label_name, mark_weak, weak_note
from desi_abundances.plots.evaluation import (
    METHOD_COLOURS,
    METHOD_LABELS,
    REFERENCE,
    _pair,
    _title,
)


def _z(table: pd.DataFrame, label: str, method: str) -> np.ndarray | None:
    """Finite z scores of a method's label, None when it has no uncertainties."""
    err_column = f"{method}_{label}_err"
    if err_column not in table:
        return None
    ref, pred = _pair(table, label, method)
    ref_err = f"{REFERENCE}_{label}_err"
    z = z_scores(pred, ref, table[err_column].to_numpy(float),
                 table[ref_err].to_numpy(float) if ref_err in table else None)
    return z[np.isfinite(z)]


def _colour_weak_ticks(ax, labels: Sequence[str], weak: Mapping[str, str] | None) -> None:
    for tick, label in zip(ax.get_xticklabels(), labels):
        if label in (weak or {}):
            tick.set_color(WEAK_COLOUR)


def uncertainty_calibration(
    table: pd.DataFrame,
    labels: Sequence[str],
    methods: Sequence[str] = ("network",),
    is_mock: bool = False,
    weak: Mapping[str, str] | None = None,
) -> Figure:
    """Per label: histogram of z = (pred - ref)/sqrt(sigma_pred^2 + sigma_ref^2) with the unit
    Gaussian; bottom row (full width): coverage of the 68% and 95% intervals per label and
    method."""
    n_cols = min(5, max(1, math.ceil(math.sqrt(max(len(labels), 1)))))
    n_rows = math.ceil(len(labels) / n_cols)
    fig = Figure(figsize=(2.7 * n_cols, 2.4 * n_rows + 3.2), layout="constrained")
    grid = fig.add_gridspec(n_rows + 1, n_cols, height_ratios=[1] * n_rows + [1.4])
    grid_z = np.linspace(-5, 5, 201)
    gaussian = np.exp(-0.5 * grid_z**2) / np.sqrt(2 * np.pi)
    coverage = {method: ([], []) for method in methods}
    for k, label in enumerate(labels):
        ax = fig.add_subplot(grid[k // n_cols, k % n_cols])
        ax.plot(grid_z, gaussian, color="k", lw=1, label="N(0, 1)")
        for method in methods:
            z = _z(table, label, method)
            has = z is not None and z.size > 0
            coverage[method][0].append(np.mean(np.abs(z) <= 1) if has else np.nan)
            coverage[method][1].append(np.mean(np.abs(z) <= Z_95) if has else np.nan)
            if has:
                ax.hist(np.clip(z, -5, 5), bins=40, range=(-5, 5), density=True,
                        histtype="step", color=METHOD_COLOURS.get(method),
                        label=f"{METHOD_LABELS.get(method, method)} std {np.std(z):.2f}")
        ax.set_xlabel(f"z of {label_name(label)}", fontsize=8)
        ax.set_ylabel("density", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_ylim(0, max(0.6, 1.35 * ax.get_ylim()[1]))
        ax.legend(fontsize=6, loc="upper right", framealpha=0.6)
        mark_weak(ax, label, weak)
    ax = fig.add_subplot(grid[n_rows, :])
    x = np.arange(len(labels))
    for method in methods:
        c68, c95 = coverage[method]
        name = METHOD_LABELS.get(method, method)
        ax.plot(x, c68, "o", ms=4, color=METHOD_COLOURS.get(method), label=f"{name} 68%")
        ax.plot(x, c95, "s", ms=4, color=METHOD_COLOURS.get(method), mfc="none",
                label=f"{name} 95%")
    ax.axhline(0.6827, color="k", ls="--", lw=0.8, label="nominal 68%")
    ax.axhline(0.95, color="k", ls=":", lw=0.8, label="nominal 95%")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_xticks(x)
    ax.set_xticklabels([label_name(label) for label in labels], rotation=60, ha="right",
                       fontsize=8)
    _colour_weak_ticks(ax, labels, weak)
    ax.set_ylabel("coverage (fraction of stars)", fontsize=8)
    ax.set_title("coverage of the 68% and 95% intervals (|z| <= 1, 1.96)", fontsize=9)
    ax.legend(fontsize=7, ncol=4, loc="lower left")
    fig.suptitle(_title("Uncertainty calibration of the test stars "
                        "(z = (pred - APOGEE) / combined sigma; |z| > 5 in the end bins)", is_mock))
    if weak:
        fig.supxlabel(weak_note(weak), fontsize=8, color=WEAK_COLOUR)
    return fig


def method_comparison(
    metrics_by_method: Mapping[str, Mapping[str, Mapping[str, float]]],
    labels: Sequence[str],
    is_mock: bool = False,
    weak: Mapping[str, str] | None = None,
) -> Figure:
    """Robust std of the residuals per label for each method (T_eff in its own panel, K)."""
    others = [label for label in labels if label != "teff"]
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    ax_teff, ax = fig.subplots(
        1, 2, gridspec_kw={"width_ratios": [1, max(len(others), 1) / 3]}
    )
    methods = list(metrics_by_method)
    width = 0.8 / max(len(methods), 1)

    def spread(method: str, label: str) -> float:
        value = metrics_by_method[method].get(label, {}).get("robust_std")
        return math.nan if value is None else float(value)

    for i, method in enumerate(methods):
        values = [spread(method, label) for label in others]
        ax.bar(np.arange(len(others)) + i * width, values, width,
               color=METHOD_COLOURS.get(method), label=METHOD_LABELS.get(method, method))
        if "teff" in labels:
            ax_teff.bar(i, spread(method, "teff"), color=METHOD_COLOURS.get(method))
    ax.set_xticks(np.arange(len(others)) + 0.4 - width / 2)
    ax.set_xticklabels([label_name(label) for label in others], rotation=60, ha="right")
    _colour_weak_ticks(ax, others, weak)
    ax.set_ylabel("robust std of residuals [dex]")
    ax.set_xlabel("label" + (" (red: weak, the spectra barely inform it)" if weak else ""))
    ax.legend()
    ax_teff.set_xticks(range(len(methods)))
    ax_teff.set_xticklabels([METHOD_LABELS.get(m, m) for m in methods], rotation=45)
    ax_teff.set_ylabel(r"robust std of $T_\mathrm{eff}$ residuals [K]")
    ax_teff.set_xlabel("method")
    fig.suptitle(_title("Precision per label and method (test stars)", is_mock))
    return fig
