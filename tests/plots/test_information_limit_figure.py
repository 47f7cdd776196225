"""The information-limit figure draws a skipped step as a note, not an error."""
from matplotlib.figure import Figure

from desi_abundances.evaluation.information_limit import skipped
from desi_abundances.plots import plot_information_limit


def test_skipped_step_gives_a_figure_with_the_reason():
    report, table = skipped("disabled", True, ["teff", "fe_h"])
    assert list(table.columns) == ["TARGETID", "snr", "teff_crb", "fe_h_crb"] and len(table) == 0
    figure = plot_information_limit(table, report, ["teff", "fe_h"], True)
    assert isinstance(figure, Figure)
    texts = [t.get_text() for ax in figure.axes for t in ax.texts]
    assert any("disabled" in t for t in texts)
    assert figure._suptitle.get_text().startswith("MOCK")
