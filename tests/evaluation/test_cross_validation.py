"""evaluation.cross_validation: every star predicted once out of fold by the three methods;
fold mean and spread; MLflow names; Markdown."""
import json
import math

import numpy as np
import pytest
from tiny_real_stars import EVALUATION, LABELS, STRATA, TRAINING, tiny_library_spectra

from desi_abundances.evaluation import cross_validation
from desi_abundances.nn.splits import star_strata, stratified_folds


def test_fold_spread_is_mean_and_std_over_folds():
    folds = [{m: {"teff": {"robust_std": v, "bias": 0.0}} for m in ("network", "ridge", "cannon")}
             for v in (100.0, 120.0, 140.0)]
    spread = cross_validation.fold_spread(folds, ["teff"])["network"]["teff"]
    assert spread["robust_std"] == pytest.approx(120.0)
    assert spread["robust_std_fold_std"] == pytest.approx(20.0)
    assert math.isnan(spread["z_std"])


@pytest.fixture(scope="module")
def cross_validated():
    spectra, crossmatch = tiny_library_spectra()
    keys = star_strata(spectra.meta, STRATA, crossmatch)
    folds = stratified_folds(spectra.meta["TARGETID"].to_numpy(), keys, 3, seed=2)
    return spectra, cross_validation.cross_validate(spectra, folds, LABELS, TRAINING, EVALUATION)


def test_every_star_is_predicted_once_out_of_fold(cross_validated):
    spectra, (table, content) = cross_validated
    assert sorted(table["TARGETID"]) == sorted(spectra.meta["TARGETID"])
    assert content["n_folds"] == 3 and content["n_stars"] == spectra.n_spectra
    json.dumps(content, allow_nan=False)
    for method in ("network", "ridge", "cannon"):
        assert np.isfinite(table[f"{method}_teff"]).all()
        assert content["spread"][method]["fe_h"]["robust_std_fold_std"] is not None
        assert set(content["by_group"][method]["logg"]) == {"dwarfs", "giants", "metal_poor"}
    # the toy spectra are linear + quadratic in the labels: the peers recover them
    assert content["pooled"]["ridge"]["fe_h"]["robust_std"] < 0.2
    assert 0.0 <= content["pooled_ood_fraction"] <= 1.0


def test_flat_metrics_and_markdown(cross_validated):
    _, (_, content) = cross_validated
    flat = cross_validation.flat_cv_metrics(content)
    assert {"network/cv/teff.robust_std", "network/cv/teff.robust_std_fold_std",
            "cannon/cv_pooled/logg.robust_std", "network/cv_giants/logg.robust_std",
            "network/cv/ood_fraction"} <= set(flat)
    text = cross_validation.markdown(content, LABELS, "REAL (tiny)")
    assert text.startswith("# k-fold cross-validation - REAL (tiny)")
    assert " +- " in text and "## By star group" in text
