"""The epistemic term (nn.feature_density): the leverage of a Bayesian linear last layer is
about (1 + H) / N for features like the training stars', grows away from them, is NaN before
fitting, and enters every error as sqrt(1 + h) (nn.calibration)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from desi_abundances.nn.calibration import combined_error, epistemic_factor
from desi_abundances.nn.feature_density import FeatureDensity
from desi_abundances.nn.network import architecture_for, build_network

N_TRAIN, H = 4000, 16


def training_features(n_sets: int = 1) -> torch.Tensor:
    """``n_sets`` x N_TRAIN correlated Gaussian features with very unequal variances (like a
    hidden layer's), all from one distribution."""
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((H, H)) * np.logspace(0, -3, H)[:, None]
    draws = rng.standard_normal((n_sets * N_TRAIN, H)) @ mixing + 2.0
    return torch.from_numpy(draws.astype(np.float32))


def test_training_like_features_have_the_bayesian_leverage():
    density = FeatureDensity(H, rank=H)
    features, fresh = training_features(2).split(N_TRAIN)  # fresh: other stars, same kind
    density.fit(features)
    leverage = density.leverage(fresh).numpy()
    assert np.mean(leverage) == pytest.approx((1 + H) / N_TRAIN, rel=0.05)


def test_leverage_grows_away_from_the_training_set():
    density = FeatureDensity(H, rank=4)
    features = training_features()
    density.fit(features)
    centre = features.mean(0, keepdim=True)
    spread = features.std(0, keepdim=True)
    leverages = [float(density.leverage(centre + k * spread)[0]) for k in (0.0, 1.0, 3.0, 10.0)]
    assert leverages[0] == pytest.approx(1.0 / N_TRAIN, rel=1e-3)
    assert np.all(np.diff(leverages) > 0)
    assert leverages[-1] > 100 * leverages[1] / 10  # ~k^2 growth


def test_an_unfitted_density_says_nothing():
    density = FeatureDensity(H)
    assert torch.isnan(density.leverage(torch.zeros(3, H))).all()
    with pytest.raises(ValueError, match="at least 2"):
        density.fit(torch.zeros(1, H))


def test_the_epistemic_factor_multiplies_the_calibrated_error():
    err_net, err_model, rchi2 = np.array([1.0, 1.0]), np.array([2.0, np.nan]), np.array([1.0, 4.0])
    plain = combined_error(err_net, err_model, rchi2, 1.0, 1.0)
    with_leverage = combined_error(err_net, err_model, rchi2, 1.0, 1.0, np.array([3.0, np.nan]))
    assert with_leverage.tolist() == pytest.approx([plain[0] * 2.0, plain[1]])
    assert epistemic_factor(None) == 1.0


def test_old_architectures_build_without_a_density_and_new_ones_with():
    new = architecture_for(30, 3, {"hidden_sizes": [8], "input_components": 0})
    assert build_network(new).density is not None
    old = dict(new)
    del old["feature_density_rank"]  # a bundle written before the term
    network = build_network(old)
    assert network.density is None
    out = network.outputs(torch.zeros(2, 30))
    assert out.leverage is None and out.mean.shape == (2, 3)
