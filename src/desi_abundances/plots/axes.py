"""Axis helpers shared by every figure: a readable log S/N axis and label axis texts."""
from __future__ import annotations

from matplotlib.ticker import NullFormatter, ScalarFormatter

from desi_abundances.constants import label_unit


def log_snr_axis(ax, ticks: tuple[float, ...] = (10, 20, 50, 100, 200)) -> None:
    """A logarithmic S/N axis labelled with plain numbers at ``ticks`` only (matplotlib's
    default minor labels 2x10^1, 3x10^1... overlap in small panels)."""
    ax.set_xscale("log")
    ax.set_xticks(list(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def pretty_label(label: str) -> str:
    """Axis text of a label: ``teff`` -> ``T_eff [K]``, ``mg_fe`` -> ``[Mg/Fe] [dex]``."""
    if label == "teff":
        return r"$T_\mathrm{eff}$ [K]"
    if label == "logg":
        return r"$\log g$ [dex]"
    if label == "fe_h":
        return "[Fe/H] [dex]"
    if label.endswith("_fe"):
        element = label[:-3]
        element = "Ti II" if element == "tiii" else ("C I" if element == "ci" else element.title())
        return f"[{element}/Fe] [{label_unit(label)}]"
    return f"{label} [{label_unit(label)}]"
