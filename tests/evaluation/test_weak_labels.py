"""Weak labels from the information-limit report; no interval under 30 stars."""
import numpy as np

from desi_abundances.evaluation import information_bounds as ib
from desi_abundances.evaluation.weak_labels import weak_labels


def _entry(status="ok", crb=0.02, scatter=0.05, spread=0.2, no_info=False):
    values = {"status": status, "median_crb": crb, "network_robust_std": scatter,
              "apogee_label_robust_std": spread}
    return {"no_information": no_info, "by_snr": {"snr_50": values}}


def test_weak_labels_reasons():
    report = {"status": "ok", "labels": {
        "fe_h": _entry(),
        "p_fe": _entry(crb=0.25),                       # bound above the spread
        "na_fe": _entry(scatter=0.18),                  # network returns the population
        "ci_fe": _entry(status="no information", crb=None, no_info=True),
    }}
    weak = weak_labels(report, {"always": ["ce_fe"]})
    assert set(weak) == {"p_fe", "na_fe", "ci_fe", "ce_fe"}
    assert weak["p_fe"].startswith("bound 1.25") and weak["na_fe"].startswith("scatter 0.90")
    assert weak_labels({"status": "skipped"}, None) == {}


def test_no_interval_under_thirty_stars():
    rng = np.random.default_rng(1)
    few = ib.window_ratio(rng.normal(0, 0.1, 12), np.full(12, 0.01), np.full(12, 0.05), 10)
    many = ib.window_ratio(rng.normal(0, 0.1, 60), np.full(60, 0.01), np.full(60, 0.05), 10)
    assert few["status"] == "ok" and np.isfinite(few["ratio"]) and few["ratio_68"] is None
    lo, hi = many["ratio_68"]
    assert lo < many["ratio"] < hi
