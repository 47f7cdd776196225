"""Metric functions on hand-made residuals with known answers."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from desi_abundances.evaluation import metrics


def test_robust_std_of_known_values():
    # median 3, absolute deviations 2,1,0,1,2,97 -> MAD 1.5
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 100.0])
    assert metrics.robust_std(values) == pytest.approx(1.4826 * 1.5)


def test_residual_stats_known_bias_std_and_outliers():
    residuals = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, 50.0])
    stats = metrics.residual_stats(residuals, outlier_nsigma=3.0)
    assert stats["n"] == 6
    assert stats["bias"] == pytest.approx(55.0 / 6)
    assert stats["std"] == pytest.approx(np.std(residuals, ddof=1))
    # median 1.5, |dev| = 2.5,1.5,.5,.5,1.5,48.5 -> MAD 1.5 -> robust std 2.2239
    assert stats["robust_std"] == pytest.approx(1.4826 * 1.5)
    # only 50 lies beyond 3 x 2.2239 of the median
    assert stats["outlier_frac"] == pytest.approx(1 / 6)
    # an absolute threshold of 1 dex: 2.5, 1.5, 1.5, 48.5 exceed it
    absolute = metrics.residual_stats(residuals, outlier_absolute=1.0)
    assert absolute["outlier_frac"] == pytest.approx(4 / 6)


def test_gaussian_residuals_recover_std_and_coverage():
    rng = np.random.default_rng(3)
    n = 200_000
    ref = rng.normal(0.0, 0.3, n)
    sigma_pred = np.full(n, 0.08)
    sigma_ref = np.full(n, 0.06)  # combined sigma 0.1
    pred = ref + 0.02 + rng.normal(0.0, 0.1, n)
    stats = metrics.calibration_stats(pred - 0.02, ref, sigma_pred, sigma_ref)
    assert stats["z_std"] == pytest.approx(1.0, abs=0.01)
    assert stats["coverage_68"] == pytest.approx(0.6827, abs=0.005)
    assert stats["coverage_95"] == pytest.approx(0.95, abs=0.003)
    resid = metrics.residual_stats(pred - ref)
    assert resid["bias"] == pytest.approx(0.02, abs=0.001)
    assert resid["robust_std"] == pytest.approx(0.1, rel=0.01)
    # uncertainties twice too small: z std doubles, coverage collapses
    small = metrics.calibration_stats(pred - 0.02, ref, sigma_pred / 2, sigma_ref / 2)
    assert small["z_std"] == pytest.approx(2.0, rel=0.01)
    assert small["coverage_68"] == pytest.approx(0.383, abs=0.005)


def test_calibration_excludes_unknown_sigmas():
    pred = np.array([1.0, 2.0, 3.0, 4.0])
    ref = np.array([0.0, 2.0, 3.0, 4.0])
    stats = metrics.calibration_stats(pred, ref, np.array([1.0, np.nan, 1.0, 0.0]), None)
    assert stats["n_z"] == 2  # NaN and zero sigma excluded
    assert stats["coverage_68"] == pytest.approx(1.0)  # z = 1 and 0


def test_label_metrics_snr_bins_and_missing_references():
    pred = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    ref = np.array([0.0, 0.0, np.nan, 0.4, 0.4, 0.4])
    snr = np.array([5.0, 15.0, 25.0, 35.0, 45.0, 500.0])
    out = metrics.label_metrics(pred, ref, np.full(6, 0.1), np.zeros(6), snr, [0, 20, 40, 100])
    assert out["n"] == 5  # the NaN reference is dropped
    assert [b["n"] for b in out["by_snr"]] == [2, 1, 1]  # snr 500 falls outside the edges
    assert out["by_snr"][0]["bias"] == pytest.approx(0.15)
    assert out["by_snr"][0]["snr_min"] == 0 and out["by_snr"][0]["snr_max"] == 20
    with pytest.raises(ValueError, match="increasing"):
        metrics.label_metrics(pred, ref, None, None, snr, [10, 5])


def test_evaluate_predictions_layout_and_json():
    refs = pd.DataFrame({"TARGETID": [1, 2, 3], "snr": [10.0, 20.0, 30.0],
                         "fe_h": [0.0, np.nan, 0.2], "fe_h_err": [0.01, 0.01, 0.01]})
    preds = pd.DataFrame({"TARGETID": [3, 2, 1], "fe_h": [0.25, 9.0, -0.05],
                          "fe_h_err": [0.05, 0.05, 0.05]})
    out = metrics.evaluate_predictions(preds, refs, ["fe_h"], [0, 100])
    assert out["fe_h"]["n"] == 2
    assert out["fe_h"]["bias"] == pytest.approx(0.0)
    assert set(out["fe_h"]) >= {"bias", "std", "robust_std", "outlier_frac", "z_std",
                                "coverage_68", "coverage_95", "n", "by_snr"}
    text = json.dumps(metrics.json_safe({"network": out, "x": math.inf}), allow_nan=False)
    assert '"x": null' in text
    with pytest.raises(KeyError, match="mg_fe"):
        metrics.evaluate_predictions(preds, refs, ["mg_fe"], [0, 100])
    with pytest.raises(ValueError, match="share only"):
        metrics.evaluate_predictions(preds.iloc[:2], refs, ["fe_h"], [0, 100])


def test_flat_metrics_names_and_best_method():
    per_method = {
        "network": {"fe_h": {"std": 0.1, "robust_std": 0.05, "z_std": 1.1, "n": 10}},
        "cannon": {"fe_h": {"std": 0.2, "robust_std": 0.04, "z_std": math.nan, "n": 10}},
    }
    flat = metrics.flat_metrics(per_method)
    assert flat["network/test/fe_h.residual_std"] == 0.1
    assert flat["network/test/fe_h.robust_std"] == 0.05
    assert flat["network/test/fe_h.z_std"] == 1.1
    assert flat["0_headline/network/robust_std/fe_h"] == 0.05  # the primary method's headline
    assert flat["0_headline/network/z_std/fe_h"] == 1.1
    assert not any(k.startswith("0_headline/cannon") for k in flat)
    assert "0_headline/network/residual_std/fe_h" not in flat
    assert flat["cannon/test/fe_h.residual_std"] == 0.2
    assert "cannon/test/fe_h.z_std" not in flat  # NaN left out
    history = metrics.mlflow_metrics_history(flat)
    assert history["network/test/fe_h.z_std"] == {"value": 1.1, "step": 0}
    assert metrics.best_method_per_label(per_method, ["fe_h"]) == {"fe_h": "cannon"}
    text = metrics.summary_markdown(per_method, ["fe_h"], is_mock=True)
    assert "MOCK" in text.splitlines()[0]
    assert "| fe_h | dex |" in text and text.rstrip().endswith("cannon 1.")
