"""The information-limit figure: per label, the Cramer-Rao bound of each test star and the
network's scatter against S/N (the numbers come from ``evaluation.information_limit``)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from desi_abundances.constants import label_unit
from desi_abundances.plots.axes import WEAK_COLOUR, label_name, log_snr_axis, mark_weak, weak_note


def plot_information_limit(bounds: pd.DataFrame, report: Mapping[str, Any],
                           labels: Sequence[str], is_mock: bool,
                           weak: Mapping[str, str] | None = None) -> Figure:
    """Per label: each star's bound vs S/N (grey), the median bound per S/N bin (black) and
    the network's robust scatter per bin (blue; orange: APOGEE's errors removed) and the
    APOGEE labels' own spread (dotted: the scatter of answering the median), log axes; one
    legend for the figure; weak labels (``weak``) marked."""
    n = max(len(labels), 1)
    n_cols = min(6, max(1, math.ceil(math.sqrt(n))))
    n_rows = math.ceil(n / n_cols)
    fig = Figure(figsize=(2.9 * n_cols, 2.5 * n_rows + 1.2), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    title = "Network scatter vs the Cramer-Rao bound"
    fig.suptitle(f"MOCK data - {title}" if is_mock else f"REAL data - {title}", fontsize=11)
    if report.get("status") != "ok":
        axes[0].text(0.5, 0.5, f"not computed:\n{report.get('reason', '')}", ha="center",
                     va="center", wrap=True, transform=axes[0].transAxes, fontsize=8)
        axes[0].set_axis_off()
        return fig
    bins = [w for w in report["windows"] if w["kind"] == "bin"]
    snr = bounds["snr"].to_numpy(np.float64)
    for ax, label in zip(axes, labels):
        entry = report["labels"][label]
        ax.set_title(label_name(label), fontsize=9)
        ax.set_xscale("log")
        ax.set_ylabel(f"uncertainty [{label_unit(label)}]", fontsize=7)
        ax.set_xlabel("S/N per pixel", fontsize=7)
        mark_weak(ax, label, weak)
        crb = bounds[f"{label}_crb"].to_numpy(np.float64)
        if entry["no_information"]:
            ax.text(0.5, 0.5, "no information\n(model does not\nrespond to it)", ha="center",
                    va="center", transform=ax.transAxes, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        good = np.isfinite(crb) & (crb > 0)
        ax.set_yscale("log")
        ax.scatter(snr[good], crb[good], s=3, c="0.6", lw=0, label="bound (star)")
        centres, medians, scatter, net, spread = [], [], [], [], []
        for b in bins:
            v = entry["by_snr"][b["name"]]
            inside = good & (snr >= b["snr_min"]) & (snr < b["snr_max"])
            if not inside.any():
                continue
            centres.append(float(np.median(snr[inside])))
            medians.append(v["median_crb"] if v["median_crb"] is not None else np.nan)
            scatter.append(v["network_robust_std"])
            net.append(v["network_scatter_net_of_apogee"])
            spread.append(v["apogee_label_robust_std"])
        ax.plot(centres, spread, ":", c="0.3", lw=1, label="APOGEE label spread")
        ax.plot(centres, medians, "k-", lw=1.2, label="median bound")
        ax.plot(centres, scatter, "o-", c="C0", ms=3, lw=1, label="network scatter")
        ax.plot(centres, net, "s--", c="C1", ms=3, lw=1, label="net of APOGEE")
        log_snr_axis(ax, (10, 20, 50, 100))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(labelsize=7)
    _legend(fig, axes, n, weak_note(weak))
    return fig


def _legend(fig: Figure, axes, n_panels: int, note: str) -> None:
    """One legend for the figure: in the first unused panel when there is one, else below
    the panels; the weak-label note under it."""
    handles, names = next((ax.get_legend_handles_labels() for ax in axes[:n_panels]
                           if ax.get_legend_handles_labels()[0]), ([], []))
    if n_panels < len(axes):
        spare = axes[n_panels]
        spare.set_visible(True)
        spare.set_axis_off()
        if handles:
            spare.legend(handles, names, loc="center", fontsize=9, markerscale=2,
                         frameon=False)
        if note:
            fig.supxlabel(note, fontsize=8, color=WEAK_COLOUR)
        return
    if handles:
        fig.legend(handles, names, loc="outside lower center", ncol=len(handles), fontsize=9,
                   markerscale=2, title=note or None, title_fontsize=8)
