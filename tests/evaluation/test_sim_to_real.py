"""evaluation.sim_to_real: a bundle trained on one set of spectra applied to another, the gap
measured (scatter, bias, z std, compression slope, OOD fraction)."""
import json

import numpy as np
import pandas as pd
import pytest
from tiny_real_stars import LABELS, TRAINING, tiny_library_spectra

from desi_abundances.evaluation import sim_to_real
from desi_abundances.nn.data import fit_pixel_standardisation
from desi_abundances.nn.model import fit_label_model


def test_residual_slope_measures_compression():
    ref = np.linspace(4000.0, 6000.0, 50)
    assert sim_to_real.residual_slope(5000.0 + 0.5 * (ref - 5000.0), ref) == pytest.approx(-0.5)
    assert np.isnan(sim_to_real.residual_slope(ref[:2], ref[:2]))


def test_gap_report_of_a_bundle_on_other_spectra():
    spectra, _ = tiny_library_spectra(seed=0)
    split = pd.DataFrame({"TARGETID": spectra.meta["TARGETID"],
                          "split": np.where(np.arange(160) < 130, "train", "validation")})
    standardisation = fit_pixel_standardisation(spectra.select(np.arange(130)))
    bundle, _, _ = fit_label_model(spectra, split, standardisation, LABELS, TRAINING)
    other, _ = tiny_library_spectra(n=40, seed=5)   # other spectra: another response
    table = sim_to_real.apply_bundle(bundle, other, LABELS)
    content = sim_to_real.gap_report(table, LABELS, bundle, {})
    json.dumps(content, allow_nan=False)
    assert content["n_test"] == 40 and 0.0 <= content["ood_fraction"] <= 1.0
    assert set(content["network"]["teff"]) >= {"robust_std", "bias", "z_std", "slope"}
    flat = sim_to_real.flat_gap_metrics(content)
    assert {"sim_to_real/teff.robust_std", "sim_to_real/teff.slope",
            "sim_to_real/ood_fraction"} <= set(flat)
    text = sim_to_real.markdown(content, LABELS, "REAL (tiny)",
                                {"network": {"teff": {"robust_std": 99.0}}})
    assert text.startswith("# Sim-to-real gap - REAL (tiny)") and "| 99 |" in text
