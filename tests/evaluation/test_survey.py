"""Survey-wide validation (evaluation.survey): statistics of injected residuals with known
errors, groups, training coverage, the goal check and the MOCK section."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.evaluation import survey


def table(n: int = 4000, error_scale: float = 1.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = pd.DataFrame({
        "TARGETID": np.arange(n), "teff": rng.uniform(4000, 6500, n),
        "logg": rng.choice([2.0, 4.5], n), "fe_h": rng.uniform(-2.5, 0.4, n)})
    catalogue = pd.DataFrame({"TARGETID": np.arange(n), "snr": rng.uniform(5, 150, n)})
    for label, err in (("teff", 50.0), ("logg", 0.1), ("fe_h", 0.05)):
        catalogue[label] = truth[label] + err * rng.standard_normal(n)
        catalogue[f"{label}_err"] = err * error_scale
    return survey.join_truth(catalogue, truth, ["teff", "logg", "fe_h"])


def test_honest_errors_give_unit_z_and_gaussian_coverage():
    stats = survey.label_stats(*(lambda t: (t["fe_h"] - t["true_fe_h"], t["fe_h_err"]))(table()))
    assert abs(stats["z_rstd"] - 1) < 0.05 and abs(stats["z_std"] - 1) < 0.05
    assert abs(stats["cov68"] - 0.683) < 0.03 and abs(stats["cov95"] - 0.954) < 0.02
    assert abs(stats["robust_std"] - 0.05) < 0.005 and abs(stats["bias"]) < 0.005


def test_errors_too_small_fail_the_goal_in_every_cell():
    t = table(n=8000, error_scale=0.5)
    inside = np.ones(len(t), bool)
    metrics = survey.survey_metrics(t, ["teff", "logg", "fe_h"], inside)
    assert {"dwarfs/snr5-10", "giants/snr>=80", "feh<-2", "teff4500-5000", "outside_training"} <= set(metrics)
    assert metrics["dwarfs"]["teff"]["n"] == int((t["true_logg"] >= 3.5).sum())
    goal = survey.goal_check(metrics)
    assert goal["cells"] == 30 and goal["passing"] == 0
    honest = survey.survey_metrics(table(n=8000), ["teff", "logg", "fe_h"], inside)
    assert survey.goal_check(honest)["passing"] == 30


def test_labels_outside_the_training_set_are_outside_the_coverage():
    t = table()
    train = t[(t["true_logg"] < 3) & (t["true_fe_h"] > -1)].rename(
        columns=lambda c: c.removeprefix("true_"))
    train = train.loc[:, ~train.columns.duplicated(keep="last")]
    inside = survey.training_coverage(t, train)
    giants_rich = (t["true_logg"] < 3) & (t["true_fe_h"] > -0.9)
    assert inside[giants_rich].mean() > 0.95
    assert inside[t["true_logg"] > 4].mean() < 0.01  # dwarfs: never in the training set


def test_flat_names_and_the_mock_section():
    t = table(n=500)
    metrics = survey.survey_metrics(t, ["teff", "logg", "fe_h"], np.ones(len(t), bool))
    flat = survey.flat_survey_metrics(metrics)
    assert "survey/fe_h/dwarfs.snrge80/z_rstd" in flat and "survey/teff/feh-1.5--1/bias" in flat
    assert all("<" not in name and ">" not in name for name in flat)
    text = survey.summary_markdown(metrics, ["teff", "logg", "fe_h"], survey.goal_check(metrics), len(t))
    assert text.startswith("## Survey-wide validation (MOCK data")


def test_leverage_bins_appear_only_with_a_leverage_column():
    t = table(n=1000)
    inside = np.ones(len(t), bool)
    assert not any(name.startswith("leverage") for name in survey.groups_of(t, inside))
    t["leverage"] = np.linspace(0.0, 1.0, len(t))
    groups = survey.groups_of(t, inside)
    assert {"leverage<0.1", "leverage0.1-0.2", "leverage>=0.8"} <= set(groups)
    assert groups["leverage>=0.8"].sum() == int((t["leverage"] >= 0.8).sum())
