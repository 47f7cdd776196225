"""Evaluation figures of predicted stellar labels. matplotlib only, no Kedro, no file I/O.

Every function takes the ``test_predictions`` table and returns a ``matplotlib`` Figure. The
table holds one row per test star: ``TARGETID``, ``snr`` and, per label, the APOGEE reference
``apogee_<label>`` / ``apogee_<label>_err`` and each method's ``<method>_<label>`` /
``<method>_<label>_err`` (methods: network, ridge, cannon). Axes carry units (K, dex);
titles start with "MOCK" when the data are mock. Figures are built without pyplot (no global
state, nothing to close).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from desi_abundances.evaluation.metrics import Z_95, z_scores
from desi_abundances.maths.robust import robust_std
from desi_abundances.plots.axes import log_snr_axis, pretty_label

REFERENCE = "apogee"
METHOD_LABELS = {"network": "network", "ridge": "ridge", "cannon": "The Cannon"}
METHOD_COLOURS = {"network": "C0", "ridge": "C1", "cannon": "C2"}


def _title(text: str, is_mock: bool) -> str:
    return f"MOCK data - {text}" if is_mock else text


def _grid(n_panels: int, panel_size: float = 2.6) -> tuple[Figure, np.ndarray]:
    n_cols = min(5, max(1, math.ceil(math.sqrt(n_panels))))
    n_rows = math.ceil(n_panels / n_cols)
    fig = Figure(figsize=(panel_size * n_cols, panel_size * n_rows + 0.6))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, axes.flat


def _pair(table: pd.DataFrame, label: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    ref = table[f"{REFERENCE}_{label}"].to_numpy(np.float64)
    pred = table[f"{method}_{label}"].to_numpy(np.float64)
    return ref, pred


def _finite(*arrays: np.ndarray) -> np.ndarray:
    keep = np.ones(arrays[0].shape, bool)
    for array in arrays:
        keep &= np.isfinite(array)
    return keep


def one_to_one(
    table: pd.DataFrame, labels: Sequence[str], method: str = "network", is_mock: bool = False
) -> Figure:
    """Grid of 2D histograms, prediction vs APOGEE per label, with the 1:1 line, bias and
    robust std."""
    fig, axes = _grid(len(labels))
    for ax, label in zip(axes, labels):
        ref, pred = _pair(table, label, method)
        keep = _finite(ref, pred)
        ax.set_xlabel(f"APOGEE {pretty_label(label)}", fontsize=8)
        ax.set_ylabel(f"{METHOD_LABELS.get(method, method)} {pretty_label(label)}", fontsize=8)
        ax.tick_params(labelsize=7)
        if not keep.any():
            ax.text(0.5, 0.5, "no reference", ha="center", va="center", transform=ax.transAxes)
            continue
        ref, pred = ref[keep], pred[keep]
        low, high = np.percentile(np.concatenate([ref, pred]), [0.5, 99.5])
        pad = 0.05 * (high - low) if high > low else 0.5
        limits = (low - pad, high + pad)
        bins = max(10, min(60, int(np.sqrt(ref.size) * 1.5)))
        ax.hist2d(ref, pred, bins=bins, range=[limits, limits], cmap="viridis", cmin=1,
                  norm=LogNorm(vmin=1))
        ax.plot(limits, limits, color="C3", lw=0.8)
        ax.set_xlim(limits)
        ax.set_ylim(limits)
        residual = pred - ref
        ax.text(
            0.04, 0.96,
            f"bias {residual.mean():+.3g}\nrobust std {robust_std(residual):.3g}\nn {ref.size}",
            transform=ax.transAxes, va="top", fontsize=7,
        )
    fig.suptitle(_title(f"{METHOD_LABELS.get(method, method)} vs APOGEE, test stars "
                        "(stars per bin, log colour scale)", is_mock))
    fig.tight_layout()
    return fig


def residuals_vs_snr(
    table: pd.DataFrame,
    labels: Sequence[str],
    method: str = "network",
    snr_bin_edges: Sequence[float] | None = None,
    is_mock: bool = False,
) -> Figure:
    """Residual (prediction - APOGEE) vs S/N per label: points, binned median and +-robust std."""
    fig, axes = _grid(len(labels))
    snr = table["snr"].to_numpy(np.float64)
    for ax, label in zip(axes, labels):
        ref, pred = _pair(table, label, method)
        keep = _finite(ref, pred, snr) & (snr > 0)
        ax.axhline(0.0, color="C3", lw=0.8)
        log_snr_axis(ax)
        ax.set_xlabel("S/N per pixel", fontsize=8)
        ax.set_ylabel(f"residual {pretty_label(label)}", fontsize=8)
        ax.tick_params(labelsize=7)
        if not keep.any():
            continue
        residual = pred[keep] - ref[keep]
        x = snr[keep]
        ax.scatter(x, residual, s=2, alpha=0.3, color="0.3", rasterized=True)
        edges = (
            np.asarray(snr_bin_edges, np.float64)
            if snr_bin_edges is not None
            else np.geomspace(x.min(), x.max() * 1.0001, 8)
        )
        edges = np.clip(edges, x.min(), x.max() * 1.0001)
        centres, medians, spreads = [], [], []
        for low, high in zip(edges[:-1], edges[1:]):
            inside = (x >= low) & (x < high)
            if inside.sum() >= 5:
                centres.append(np.sqrt(low * high))
                medians.append(np.median(residual[inside]))
                spreads.append(robust_std(residual[inside]))
        if centres:
            centres, medians, spreads = map(np.array, (centres, medians, spreads))
            ax.plot(centres, medians, "o-", color="C0", ms=3, lw=1)
            ax.fill_between(centres, medians - spreads, medians + spreads, color="C0", alpha=0.25)
        limit = 5 * robust_std(residual) if residual.size > 1 else 1.0
        if np.isfinite(limit) and limit > 0:
            ax.set_ylim(-limit, limit)
    fig.suptitle(
        _title(f"{METHOD_LABELS.get(method, method)} - APOGEE vs S/N (band: robust std)", is_mock)
    )
    fig.tight_layout()
    return fig


def _missing_columns_figure(table: pd.DataFrame, needed: Sequence[str], what: str,
                           is_mock: bool) -> Figure | None:
    """A figure saying which columns are missing, or None when all are present."""
    missing = [column for column in needed if column not in table]
    if not missing:
        return None
    fig = Figure(figsize=(6, 2))
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, f"{what} needs columns {missing}\n(labels not in params:labels)",
            ha="center", va="center")
    fig.suptitle(_title(what, is_mock))
    return fig


def _kiel_panel(ax, teff, logg, fe_h, title: str, colour_range) -> object:
    keep = _finite(teff, logg)
    colour = np.where(np.isfinite(fe_h), fe_h, np.nan)
    points = ax.scatter(
        teff[keep], logg[keep], c=colour[keep], s=4, cmap="viridis",
        vmin=colour_range[0], vmax=colour_range[1], rasterized=True,
    )
    ax.set_xlabel(pretty_label("teff"))
    ax.set_ylabel(pretty_label("logg"))
    ax.set_title(title, fontsize=10)
    return points


def kiel_diagram(table: pd.DataFrame, method: str = "network", is_mock: bool = False) -> Figure:
    """log g vs Teff coloured by [Fe/H]: the method's labels beside APOGEE's (axes reversed)."""
    needed = [f"{s}_{label}" for s in (method, REFERENCE) for label in ("teff", "logg", "fe_h")]
    placeholder = _missing_columns_figure(table, needed, "Kiel diagram", is_mock)
    if placeholder is not None:
        return placeholder
    fig = Figure(figsize=(10, 4.4))
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    fe_h_values = np.concatenate(
        [table[f"{REFERENCE}_fe_h"].to_numpy(float), table[f"{method}_fe_h"].to_numpy(float)]
    )
    finite = fe_h_values[np.isfinite(fe_h_values)]
    colour_range = tuple(np.percentile(finite, [2, 98])) if finite.size else (-1.0, 0.5)
    points = None
    for ax, source, title in (
        (axes[0], method, f"{METHOD_LABELS.get(method, method)} (DESI spectra)"),
        (axes[1], REFERENCE, "APOGEE DR17"),
    ):
        points = _kiel_panel(
            ax,
            table[f"{source}_teff"].to_numpy(float),
            table[f"{source}_logg"].to_numpy(float),
            table[f"{source}_fe_h"].to_numpy(float),
            title,
            colour_range,
        )
    if not axes[0].xaxis_inverted():
        axes[0].invert_xaxis()
    if not axes[0].yaxis_inverted():
        axes[0].invert_yaxis()
    fig.colorbar(points, ax=list(axes), label=pretty_label("fe_h"))
    fig.suptitle(_title("Kiel diagram of the test stars", is_mock))
    return fig


def mg_fe_vs_fe_h(table: pd.DataFrame, method: str = "network", is_mock: bool = False) -> Figure:
    """[Mg/Fe] vs [Fe/H] (the alpha sequences): the method beside APOGEE."""
    needed = [f"{s}_{label}" for s in (method, REFERENCE) for label in ("fe_h", "mg_fe")]
    placeholder = _missing_columns_figure(table, needed, "[Mg/Fe] vs [Fe/H]", is_mock)
    if placeholder is not None:
        return placeholder
    fig = Figure(figsize=(10, 4.2))
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, source, title in (
        (axes[0], method, f"{METHOD_LABELS.get(method, method)} (DESI spectra)"),
        (axes[1], REFERENCE, "APOGEE DR17"),
    ):
        fe_h = table[f"{source}_fe_h"].to_numpy(float)
        mg_fe = table[f"{source}_mg_fe"].to_numpy(float)
        keep = _finite(fe_h, mg_fe)
        if keep.sum() > 50:
            ax.hexbin(fe_h[keep], mg_fe[keep], gridsize=40, cmap="Greys", mincnt=1, bins="log")
        else:
            ax.scatter(fe_h[keep], mg_fe[keep], s=5, color="0.2")
        ax.set_xlabel(pretty_label("fe_h"))
        ax.set_ylabel(pretty_label("mg_fe"))
        ax.set_title(title, fontsize=10)
    fig.suptitle(_title("[Mg/Fe] vs [Fe/H] of the test stars", is_mock))
    fig.tight_layout()
    return fig


def uncertainty_calibration(
    table: pd.DataFrame,
    labels: Sequence[str],
    methods: Sequence[str] = ("network",),
    is_mock: bool = False,
) -> Figure:
    """Per label: histogram of z = (pred - ref)/sqrt(sigma_pred^2 + sigma_ref^2) with the unit
    Gaussian; last panel: coverage of the 68% and 95% intervals per label and method."""
    fig, axes = _grid(len(labels) + 1)
    axes = list(axes)
    grid_z = np.linspace(-5, 5, 201)
    gaussian = np.exp(-0.5 * grid_z**2) / np.sqrt(2 * np.pi)
    coverage = {method: ([], []) for method in methods}
    for ax, label in zip(axes, labels):
        ax.plot(grid_z, gaussian, color="k", lw=1, label="N(0, 1)")
        for method in methods:
            ref, pred = _pair(table, label, method)
            err_column = f"{method}_{label}_err"
            if err_column not in table:
                coverage[method][0].append(np.nan)
                coverage[method][1].append(np.nan)
                continue
            z = z_scores(
                pred, ref, table[err_column].to_numpy(float),
                table[f"{REFERENCE}_{label}_err"].to_numpy(float)
                if f"{REFERENCE}_{label}_err" in table else None,
            )
            z = z[np.isfinite(z)]
            coverage[method][0].append(np.mean(np.abs(z) <= 1) if z.size else np.nan)
            coverage[method][1].append(np.mean(np.abs(z) <= Z_95) if z.size else np.nan)
            if z.size:
                ax.hist(
                    np.clip(z, -5, 5), bins=40, range=(-5, 5), density=True, histtype="step",
                    color=METHOD_COLOURS.get(method), label=f"{METHOD_LABELS.get(method, method)}"
                    f" std {np.std(z):.2f}",
                )
        ax.set_xlabel(f"z of {pretty_label(label).split(' [')[0]}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_ylim(0, max(0.6, 1.35 * ax.get_ylim()[1]))
        ax.legend(fontsize=6, loc="upper right", framealpha=0.6)
    ax = axes[len(labels)]
    x = np.arange(len(labels))
    for method in methods:
        c68, c95 = coverage[method]
        ax.plot(x, c68, "o", ms=3, color=METHOD_COLOURS.get(method), label=f"{method} 68%")
        ax.plot(x, c95, "s", ms=3, color=METHOD_COLOURS.get(method), mfc="none",
                label=f"{method} 95%")
    ax.axhline(0.6827, color="k", ls="--", lw=0.8)
    ax.axhline(0.95, color="k", ls=":", lw=0.8)
    ax.set_ylim(0, 1.02)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=90, fontsize=5)
    ax.set_ylabel("coverage (fraction)", fontsize=8)
    ax.set_title("coverage (lines: nominal)", fontsize=8)
    ax.legend(fontsize=5)
    fig.suptitle(_title("Uncertainty calibration of the test stars "
                        "(z = (pred - APOGEE) / combined sigma; |z| > 5 in the end bins)", is_mock))
    fig.tight_layout()
    return fig


def method_comparison(
    metrics_by_method: Mapping[str, Mapping[str, Mapping[str, float]]],
    labels: Sequence[str],
    is_mock: bool = False,
) -> Figure:
    """Robust std of the residuals per label for each method (teff in its own panel, K)."""
    others = [label for label in labels if label != "teff"]
    fig = Figure(figsize=(12, 4))
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
    ax.set_xticklabels(others, rotation=90)
    ax.set_ylabel("robust std of residuals [dex]")
    ax.legend()
    ax_teff.set_xticks(range(len(methods)))
    ax_teff.set_xticklabels([METHOD_LABELS.get(m, m) for m in methods], rotation=45)
    ax_teff.set_ylabel(r"robust std of $T_\mathrm{eff}$ residuals [K]")
    fig.suptitle(_title("Precision per label and method (test stars)", is_mock))
    fig.tight_layout()
    return fig
