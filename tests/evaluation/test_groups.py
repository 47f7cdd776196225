"""evaluation.groups: dwarfs / giants / metal-poor chosen by the reference labels, their
metrics, MLflow names and Markdown."""
import numpy as np
import pandas as pd
import pytest

from desi_abundances.evaluation import groups


def _table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    logg = np.r_[np.full(n // 2, 4.4), np.full(n // 2, 2.0)]
    fe_h = np.r_[np.full(n // 3, -1.5), np.full(n - n // 3, -0.2)]
    table = {"TARGETID": np.arange(n), "snr": np.full(n, 50.0),
             "apogee_logg": logg, "apogee_logg_err": np.full(n, 0.1),
             "apogee_fe_h": fe_h, "apogee_fe_h_err": np.full(n, 0.05)}
    for method, scale in (("network", 1.0), ("ridge", 2.0), ("cannon", 3.0)):
        # giants get ten times the dwarfs' scatter
        noise = rng.normal(size=n) * np.where(logg < 3.5, 0.3, 0.03) * scale
        table[f"{method}_logg"] = logg + noise
        table[f"{method}_logg_err"] = np.full(n, 0.1)
        table[f"{method}_fe_h"] = fe_h + 0.01 * rng.normal(size=n)
        table[f"{method}_fe_h_err"] = np.full(n, 0.05)
    return pd.DataFrame(table)


def test_group_rows_and_active_groups():
    ref = pd.DataFrame({"logg": [4.0, 3.5, 3.49, np.nan], "fe_h": [-2.0, -1.0, 0.0, -3.0]})
    assert list(groups.group_rows(ref, {"logg": [3.5, None]})) == [True, True, False, False]
    assert list(groups.group_rows(ref, {"fe_h": [None, -1.0]})) == [True, False, False, True]
    assert set(groups.active_groups(["teff", "logg"])) == {"dwarfs", "giants"}
    assert groups.active_groups(["teff"]) == {}


def test_table_group_metrics_separate_dwarfs_from_giants():
    by_group = groups.table_group_metrics(_table(), ["logg", "fe_h"], {})
    network = by_group["network"]["logg"]
    assert network["dwarfs"]["n"] == 30 and network["giants"]["n"] == 30
    assert network["metal_poor"]["n"] == 20
    assert network["giants"]["robust_std"] > 5 * network["dwarfs"]["robust_std"]
    assert by_group["cannon"]["logg"]["giants"]["robust_std"] > network["giants"]["robust_std"]
    assert "by_snr" not in network["dwarfs"]


def test_attach_flat_names_and_markdown():
    by_group = groups.table_group_metrics(_table(), ["logg", "fe_h"], {})
    report = groups.attach({"network": {"logg": {"n": 60}}, "meta": {}}, by_group)
    assert set(report["network"]["logg"]["by_group"]) == {"dwarfs", "giants", "metal_poor"}
    flat = groups.flat_group_metrics(by_group)
    assert flat["network/test_giants/logg.robust_std"] == pytest.approx(
        by_group["network"]["logg"]["giants"]["robust_std"])
    assert "ridge/cv_dwarfs/fe_h.n" in groups.flat_group_metrics(by_group, split="cv")
    text = groups.markdown(by_group, ["logg", "fe_h"])
    assert text.startswith("## By star group")
    assert "| logg | dex | giants (log g < 3.5) | 30 |" in text
    assert groups.markdown({}, ["logg"]) == ""
