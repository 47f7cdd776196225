"""compute_metrics gains the star groups (metrics.json, MLflow, summary) without changing the
overall rows; a figure of data named by evaluation.data_name says so in its title."""
import numpy as np
import pandas as pd

from desi_abundances.pipelines.evaluation.nodes import compute_metrics, plot_kiel

SETTINGS = {"snr_bin_edges": [0.0, 1.0e6]}


def _predictions(n=60):
    rng = np.random.default_rng(1)
    logg = rng.uniform(1.0, 5.0, n)
    table = {"TARGETID": np.arange(n), "snr": np.full(n, 50.0),
             "apogee_logg": logg, "apogee_logg_err": np.full(n, 0.1),
             "apogee_teff": rng.uniform(4000, 6500, n), "apogee_teff_err": np.full(n, 50.0)}
    for method in ("network", "ridge", "cannon"):
        for label, scale in (("logg", 0.1), ("teff", 80.0)):
            table[f"{method}_{label}"] = table[f"apogee_{label}"] + rng.normal(0.0, scale, n)
            table[f"{method}_{label}_err"] = np.full(n, scale)
    return pd.DataFrame(table)


def test_groups_are_added_and_overall_rows_unchanged():
    args = (False, 0.1, {"enabled": False}, {"enabled": False})
    report, flat, text = compute_metrics(_predictions(), ["teff", "logg"], SETTINGS, *args)
    groups = report["network"]["logg"]["by_group"]
    assert set(groups) == {"dwarfs", "giants"}     # no fe_h label: no metal-poor group
    assert groups["dwarfs"]["n"] + groups["giants"]["n"] == 60
    assert "network/test_dwarfs/teff.robust_std" in flat
    assert "## By star group (test split)" in text
    no_groups, _, _ = compute_metrics(_predictions(), ["teff", "logg"],
                                      {**SETTINGS, "groups": {}}, *args)
    assert report["network"]["teff"]["robust_std"] == no_groups["network"]["teff"]["robust_std"]
    assert "by_group" not in no_groups["network"]["teff"] or not no_groups["network"]["teff"]["by_group"]


def test_figure_titles_name_the_data():
    table = _predictions()
    table["network_fe_h"] = table["apogee_fe_h"] = -0.2
    name = "REAL (stellar-library spectra: MILES/STELIB, not DESI)"
    figure = plot_kiel(table, False, {"data_name": name})
    assert figure.get_suptitle().startswith(name)
    assert plot_kiel(table, False, {}).get_suptitle().startswith("REAL data")
