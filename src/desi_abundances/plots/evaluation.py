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

from desi_abundances.maths.robust import robust_std
from desi_abundances.plots.axes import (
    WEAK_COLOUR,
    log_snr_axis,
    mark_weak,
    pretty_label,
    weak_note,
)

REFERENCE = "apogee"
METHOD_LABELS = {"network": "network", "ridge": "ridge", "cannon": "The Cannon"}
METHOD_COLOURS = {"network": "C0", "ridge": "C1", "cannon": "C2"}


def _title(text: str, is_mock: bool) -> str:
    return f"MOCK data - {text}" if is_mock else f"REAL data - {text}"


def _grid(n_panels: int, panel_size: float = 2.6) -> tuple[Figure, np.ndarray]:
    n_cols = min(5, max(1, math.ceil(math.sqrt(n_panels))))
    n_rows = math.ceil(n_panels / n_cols)
    fig = Figure(figsize=(panel_size * n_cols, panel_size * n_rows + 0.8), layout="constrained")
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


def _caption(fig: Figure, weak: Mapping[str, str] | None) -> None:
    note = weak_note(weak)
    if note:
        fig.supxlabel(note, fontsize=8, color=WEAK_COLOUR)


def _one_to_one_limits(ref: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(np.concatenate([ref, pred]), [0.5, 99.5])
    pad = 0.05 * (high - low) if high > low else 0.5
    return float(low - pad), float(high + pad)


def one_to_one(
    table: pd.DataFrame, labels: Sequence[str], method: str = "network", is_mock: bool = False,
    weak: Mapping[str, str] | None = None,
) -> Figure:
    """Per label: 2D histogram of prediction vs APOGEE with the 1:1 line, bias, robust std
    and n, and under it the residual (prediction - APOGEE) vs APOGEE; one log colour scale
    (stars per bin, colourbar) for every panel; weak labels marked (``weak``)."""
    n_cols = min(5, max(1, math.ceil(math.sqrt(len(labels)))))
    n_rows = math.ceil(len(labels) / n_cols)
    fig = Figure(figsize=(2.9 * n_cols + 0.8, 3.5 * n_rows + 0.9), layout="constrained")
    grid = fig.add_gridspec(2 * n_rows, n_cols, height_ratios=[3, 1.2] * n_rows)
    name = METHOD_LABELS.get(method, method)
    norm, image, used = LogNorm(vmin=1), None, []
    for k, label in enumerate(labels):
        row, col = divmod(k, n_cols)
        ax = fig.add_subplot(grid[2 * row, col])
        ax_res = fig.add_subplot(grid[2 * row + 1, col], sharex=ax)
        used += [ax, ax_res]
        ref, pred = _pair(table, label, method)
        keep = _finite(ref, pred)
        ax.set_ylabel(f"{name} {pretty_label(label)}", fontsize=8)
        ax_res.set_xlabel(f"APOGEE {pretty_label(label)}", fontsize=8)
        ax_res.set_ylabel("pred - APOGEE", fontsize=7)
        ax.tick_params(labelsize=7, labelbottom=False)
        ax_res.tick_params(labelsize=7)
        mark_weak(ax, label, weak)
        if not keep.any():
            ax.text(0.5, 0.5, "no reference", ha="center", va="center", transform=ax.transAxes)
            continue
        ref, pred = ref[keep], pred[keep]
        limits = _one_to_one_limits(ref, pred)
        bins = max(10, min(60, int(np.sqrt(ref.size) * 1.5)))
        image = ax.hist2d(ref, pred, bins=bins, range=[limits, limits], cmap="viridis", cmin=1,
                          norm=norm)[3]
        ax.plot(limits, limits, color="C3", lw=0.8)
        ax.set_xlim(limits)
        ax.set_ylim(limits)
        residual = pred - ref
        scatter = robust_std(residual)
        ax.text(0.04, 0.96, f"bias {residual.mean():+.3g}\nrobust std {scatter:.3g}\n"
                f"n {ref.size}", transform=ax.transAxes, va="top", fontsize=7)
        span = 4 * scatter if np.isfinite(scatter) and scatter > 0 else 1.0
        ax_res.hist2d(ref, np.clip(residual, -span, span), bins=[bins, 15],
                      range=[limits, (-span, span)], cmap="viridis", cmin=1, norm=norm)
        ax_res.axhline(0.0, color="C3", lw=0.8)
        ax_res.set_ylim(-span, span)
    if image is not None:
        fig.colorbar(image, ax=used, label="stars per bin", shrink=0.6, aspect=40)
    fig.suptitle(_title(f"{name} vs APOGEE, test stars (lower panels: residual, clipped "
                        "at 4 robust std)", is_mock))
    _caption(fig, weak)
    return fig


def residuals_vs_snr(
    table: pd.DataFrame,
    labels: Sequence[str],
    method: str = "network",
    snr_bin_edges: Sequence[float] | None = None,
    is_mock: bool = False,
    weak: Mapping[str, str] | None = None,
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
        mark_weak(ax, label, weak)
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
    _caption(fig, weak)
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
    fig = Figure(figsize=(10.5, 4.4), layout="constrained")
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
    fig = Figure(figsize=(10.5, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    images = []
    for ax, source, title in (
        (axes[0], method, f"{METHOD_LABELS.get(method, method)} (DESI spectra)"),
        (axes[1], REFERENCE, "APOGEE DR17"),
    ):
        fe_h = table[f"{source}_fe_h"].to_numpy(float)
        mg_fe = table[f"{source}_mg_fe"].to_numpy(float)
        keep = _finite(fe_h, mg_fe)
        if keep.sum() > 50:
            images.append(ax.hexbin(fe_h[keep], mg_fe[keep], gridsize=40, cmap="Greys",
                                    mincnt=1))
        else:
            ax.scatter(fe_h[keep], mg_fe[keep], s=5, color="0.2")
        ax.set_xlabel(pretty_label("fe_h"))
        ax.set_ylabel(pretty_label("mg_fe"))
        ax.set_title(title, fontsize=10)
    if images:  # one log scale for both panels (0.7: a single star is a visible grey)
        norm = LogNorm(vmin=0.7, vmax=max(float(im.get_array().max()) for im in images))
        for image in images:
            image.set_norm(norm)
        fig.colorbar(images[-1], ax=list(axes), label="stars per cell (log scale)")
    fig.suptitle(_title("[Mg/Fe] vs [Fe/H] of the test stars", is_mock))
    return fig
