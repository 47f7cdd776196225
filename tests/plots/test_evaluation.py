"""Every evaluation figure is drawn and written from a tiny table."""
import numpy as np
import pandas as pd
import pytest
from kedro_datasets.matplotlib import MatplotlibDataset

from desi_abundances import plots
from desi_abundances.evaluation import metrics

LABELS = ["teff", "logg", "fe_h", "mg_fe"]
METHODS = ["network", "ridge", "cannon"]


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n = 60
    data = {"TARGETID": np.arange(n), "snr": rng.uniform(5, 100, n)}
    truth = {"teff": rng.uniform(4000, 6500, n), "logg": rng.uniform(1, 5, n),
             "fe_h": rng.normal(-0.2, 0.3, n), "mg_fe": rng.normal(0.1, 0.1, n)}
    for label, value in truth.items():
        scale = {"teff": 80.0, "logg": 0.15}.get(label, 0.05)
        data[f"apogee_{label}"] = value
        data[f"apogee_{label}_err"] = np.full(n, scale / 3)
        for method in METHODS:
            data[f"{method}_{label}"] = value + rng.normal(0, scale, n)
            data[f"{method}_{label}_err"] = np.full(n, scale)
    frame = pd.DataFrame(data)
    frame.loc[:5, "apogee_mg_fe"] = np.nan
    return frame


def _write(figure, path):
    MatplotlibDataset(filepath=str(path)).save(figure)
    assert path.exists() and path.stat().st_size > 1000


def test_every_figure_is_written(table, tmp_path):
    per_method = {
        method: metrics.evaluate_predictions(
            table[["TARGETID"] + [f"{method}_{label}" for label in LABELS]
                  + [f"{method}_{label}_err" for label in LABELS]].rename(
                columns=lambda c, prefix=f"{method}_": c.removeprefix(prefix)),
            table[["TARGETID", "snr"] + [f"apogee_{label}" for label in LABELS]
                  + [f"apogee_{label}_err" for label in LABELS]].rename(
                columns=lambda c: c.removeprefix("apogee_")),
            LABELS, [0, 20, 200],
        )
        for method in METHODS
    }
    figures = {
        "one_to_one": plots.one_to_one(table, LABELS, is_mock=True),
        "residuals_vs_snr": plots.residuals_vs_snr(table, LABELS, snr_bin_edges=[5, 20, 100]),
        "kiel": plots.kiel_diagram(table, is_mock=True),
        "mg_fe_vs_fe_h": plots.mg_fe_vs_fe_h(table),
        "calibration": plots.uncertainty_calibration(table, LABELS, METHODS),
        "comparison": plots.method_comparison(per_method, LABELS, is_mock=True),
    }
    for name, figure in figures.items():
        _write(figure, tmp_path / f"{name}.png")
    assert figures["one_to_one"]._suptitle.get_text().startswith("MOCK")
    assert not figures["mg_fe_vs_fe_h"]._suptitle.get_text().startswith("MOCK")


def test_kiel_axes_are_reversed_and_labelled(table):
    figure = plots.kiel_diagram(table)
    ax = figure.axes[0]
    assert ax.xaxis_inverted() and ax.yaxis_inverted()
    assert "[K]" in ax.get_xlabel() and "[dex]" in ax.get_ylabel()


def test_a_label_without_references_still_draws(table, tmp_path):
    table = table.copy()
    table["apogee_fe_h"] = np.nan
    _write(plots.one_to_one(table, LABELS), tmp_path / "empty.png")
    _write(plots.residuals_vs_snr(table, LABELS), tmp_path / "empty_snr.png")
    _write(plots.uncertainty_calibration(table, LABELS), tmp_path / "empty_cal.png")


def test_missing_labels_give_an_explanatory_figure(table, tmp_path):
    reduced = table.drop(columns=[c for c in table if c.endswith("mg_fe") or "mg_fe_" in c])
    figure = plots.mg_fe_vs_fe_h(reduced)
    _write(figure, tmp_path / "placeholder.png")
    assert "needs columns" in figure.axes[0].texts[0].get_text()


def test_one_to_one_has_residual_panels_colourbar_and_weak_mark(table):
    figure = plots.one_to_one(table, LABELS, is_mock=False, weak={"mg_fe": "test reason"})
    axes = figure.get_axes()
    assert len(axes) == 2 * len(LABELS) + 1  # a residual panel under each, one colourbar
    assert any(ax.get_label() == "<colorbar>" for ax in axes)
    assert figure.get_suptitle().startswith("REAL data")
    texts = [t.get_text() for ax in axes for t in ax.texts]
    assert "weak: test reason" in texts
    assert all(ax.get_xlabel() or ax.get_ylabel() for ax in axes)
    assert "APOGEE [Mg/Fe] [dex]" in {ax.get_xlabel() for ax in axes}


def test_mg_fe_vs_fe_h_has_colourbar(table):
    figure = plots.mg_fe_vs_fe_h(table, is_mock=True)
    assert any(ax.get_label() == "<colorbar>" for ax in figure.get_axes())
