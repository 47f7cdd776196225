"""The data a figure shows, named in its title: a figure of the REAL stellar-library survey
says "REAL (stellar-library spectra: MILES/STELIB, not DESI)", not just "REAL data"."""
from __future__ import annotations

from matplotlib.figure import Figure

GENERIC_REAL = "REAL data"
"""The prefix the evaluation figures give every non-mock title (``plots.evaluation``)."""


def tag_figure(figure: Figure, data_name: str | None) -> Figure:
    """``figure`` with ``data_name`` as the first line of its suptitle: it replaces a leading
    "REAL data", otherwise it goes above the title (or becomes the title); None or "" leaves
    the figure as it is."""
    if not data_name:
        return figure
    title = figure.get_suptitle()
    if data_name in title:
        return figure
    if title.startswith(GENERIC_REAL):
        title = title[len(GENERIC_REAL):].lstrip(" -")
    text = f"{data_name}\n{title}" if title else data_name
    suptitle = getattr(figure, "_suptitle", None)  # keep the title's own font size
    if suptitle is not None:
        suptitle.set_text(text)
    else:
        figure.suptitle(text, fontsize=10)
    return figure
