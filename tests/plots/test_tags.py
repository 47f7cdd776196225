"""plots.tags: a REAL stellar-library figure names its data in the title."""
from matplotlib.figure import Figure

from desi_abundances.plots.tags import tag_figure

NAME = "REAL (stellar-library spectra: MILES/STELIB, not DESI)"


def test_real_data_prefix_is_replaced_and_font_kept():
    fig = Figure()
    fig.suptitle("REAL data - Kiel diagram", fontsize=11)
    tag_figure(fig, NAME)
    assert fig.get_suptitle() == f"{NAME}\nKiel diagram"
    assert fig._suptitle.get_fontsize() == 11


def test_other_titles_gain_the_name_and_none_leaves_them():
    fig = Figure()
    fig.suptitle("MOCK data - x")
    assert tag_figure(fig, None).get_suptitle() == "MOCK data - x"
    assert tag_figure(fig, NAME).get_suptitle() == f"{NAME}\nMOCK data - x"
    assert tag_figure(fig, NAME).get_suptitle() == f"{NAME}\nMOCK data - x"  # once only
    assert tag_figure(Figure(), NAME).get_suptitle() == NAME
