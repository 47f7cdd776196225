"""evaluation.data_label (conf/real_stars): metrics_summary.md and metrics.json say REAL."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.pipelines.evaluation.nodes import compute_metrics


def _predictions(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    truth = rng.normal(5000.0, 500.0, n)
    table = {"TARGETID": np.arange(n), "snr": np.full(n, 50.0),
             "apogee_teff": truth, "apogee_teff_err": np.full(n, 70.0)}
    for method in ("network", "ridge", "cannon"):
        table[f"{method}_teff"] = truth + rng.normal(0.0, 100.0, n)
        table[f"{method}_teff_err"] = np.full(n, 70.0)
    return pd.DataFrame(table)


SETTINGS = {"snr_bin_edges": [0.0, 1.0e6]}


def test_data_label_titles_the_summary_and_meta():
    label = "REAL: stellar-library spectra, not DESI"
    report, _, text = compute_metrics(_predictions(), ["teff"], {**SETTINGS, "data_label": label},
                                      False, 0.1, {"enabled": False}, {"enabled": False})
    first, _, rest = text.partition("\n")
    assert first.endswith("(REAL)") and f"**{label}**" in rest
    assert report["meta"]["data_label"] == label


def test_without_data_label_nothing_changes():
    _, _, text = compute_metrics(_predictions(), ["teff"], SETTINGS, False, 0.1,
                                 {"enabled": False}, {"enabled": False})
    assert text.startswith("# Test-set accuracy of the stellar labels\n") and "REAL" not in text
