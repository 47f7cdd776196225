"""The survey-wide validation figure (MOCK): residual and z over the Kiel diagram of the
true labels. matplotlib only, no Kedro, no file I/O."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from desi_abundances.maths.robust import robust_std
from desi_abundances.plots.axes import pretty_label

RESIDUAL_RANGE = {"teff": 300.0, "logg": 0.6, "fe_h": 0.3}
"""Colour range (+-) of the median residual per label (K, dex)."""


def survey_kiel(table: pd.DataFrame, labels: Sequence[str] = ("teff", "logg", "fe_h"),
                is_mock: bool = True, gridsize: int = 30, min_count: int = 5) -> Figure:
    """Hexbins over true (Teff, log g): top row the median residual (pred - true) per label,
    bottom row the robust std of z = residual / err (1 = honest errors). ``table`` holds
    ``<label>``, ``<label>_err`` and ``true_<label>`` (``evaluation.survey.join_truth``);
    cells with fewer than ``min_count`` spectra are blank."""
    labels = [label for label in labels if f"true_{label}" in table.columns]
    fig = Figure(figsize=(4.0 * max(len(labels), 1), 7.2))
    axes = fig.subplots(2, max(len(labels), 1), squeeze=False)
    teff = table["true_teff"].to_numpy(np.float64)
    logg = table["true_logg"].to_numpy(np.float64)
    for column, label in enumerate(labels):
        residual = table[label].to_numpy(np.float64) - table[f"true_{label}"].to_numpy(np.float64)
        z = residual / table[f"{label}_err"].to_numpy(np.float64)
        keep = np.isfinite(residual) & np.isfinite(z) & np.isfinite(teff) & np.isfinite(logg)
        span = RESIDUAL_RANGE.get(label, 0.3)
        panels = [
            (axes[0, column], residual, np.median, "RdBu_r", (-span, span),
             f"median residual {pretty_label(label)}"),
            (axes[1, column], z, robust_std, "viridis", (0.0, 3.0),
             f"robust std of z, {pretty_label(label)}"),
        ]
        for ax, values, reduce, cmap, (lo, hi), title in panels:
            art = ax.hexbin(teff[keep], logg[keep], C=values[keep], reduce_C_function=reduce,
                            gridsize=gridsize, mincnt=min_count, cmap=cmap, vmin=lo, vmax=hi)
            ax.set_xlim(7200, 3300)
            ax.set_ylim(5.3, -0.2)
            ax.set_xlabel("true Teff (K)")
            ax.set_ylabel("true log g (dex)")
            ax.set_title(title, fontsize=9)
            fig.colorbar(art, ax=ax)
    prefix = "MOCK data - " if is_mock else ""
    fig.suptitle(f"{prefix}whole survey against the truth ({len(table)} spectra)")
    fig.tight_layout()
    return fig
