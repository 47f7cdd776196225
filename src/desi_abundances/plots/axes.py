"""Axis helpers shared by every figure: a readable log S/N axis, label names in astronomers'
notation ([Fe/H], [Mg/Fe], T_eff, log g) and the "weak label" mark."""
from __future__ import annotations

from collections.abc import Mapping

from matplotlib.ticker import NullFormatter, ScalarFormatter

from desi_abundances.constants import label_unit

WEAK_COLOUR = "C3"
"""Colour of the weak-label mark (frame and note)."""


def log_snr_axis(ax, ticks: tuple[float, ...] = (10, 20, 50, 100, 200)) -> None:
    """A logarithmic S/N axis labelled with plain numbers at ``ticks`` only (matplotlib's
    default minor labels 2x10^1, 3x10^1... overlap in small panels)."""
    ax.set_xscale("log")
    ax.set_xticks(list(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def label_name(label: str) -> str:
    """A label's name without unit: ``teff`` -> ``T_eff``, ``fe_h`` -> ``[Fe/H]``,
    ``mg_fe`` -> ``[Mg/Fe]``, ``tiii_fe`` -> ``[Ti II/Fe]``, ``ci_fe`` -> ``[C I/Fe]``."""
    if label == "teff":
        return r"$T_\mathrm{eff}$"
    if label == "logg":
        return r"$\log g$"
    if label == "fe_h":
        return "[Fe/H]"
    if label.endswith("_fe"):
        element = label[:-3]
        element = "Ti II" if element == "tiii" else ("C I" if element == "ci" else element.title())
        return f"[{element}/Fe]"
    return label


def pretty_label(label: str) -> str:
    """Axis text of a label: ``teff`` -> ``T_eff [K]``, ``mg_fe`` -> ``[Mg/Fe] [dex]``."""
    return f"{label_name(label)} [{label_unit(label)}]"


def mark_weak(ax, label: str, weak: Mapping[str, str] | None, fontsize: float = 6) -> bool:
    """Mark a panel whose label the spectra barely inform (``evaluation.weak_labels``): red
    frame and a note "weak: <reason>" at its foot. Returns whether it was marked."""
    reason = (weak or {}).get(label)
    if not reason:
        return False
    for spine in ax.spines.values():
        spine.set_edgecolor(WEAK_COLOUR)
        spine.set_linewidth(1.4)
    ax.text(0.98, 0.03, f"weak: {reason}", transform=ax.transAxes, ha="right", va="bottom",
            fontsize=fontsize, color=WEAK_COLOUR,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})
    return True


def weak_note(weak: Mapping[str, str] | None) -> str:
    """Caption text for a figure with weak labels ('' when none)."""
    if not weak:
        return ""
    return ("red frame: weak label (the spectra barely inform it; "
            "evaluation.weak_labels): " + ", ".join(label_name(k) for k in weak))
