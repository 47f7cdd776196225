"""nn.linear.fit_ridge: recovers a linear map, picks the penalty on validation, fills in
missing labels."""
from __future__ import annotations

import numpy as np
import pytest

from desi_abundances.nn.linear import _thin_svd, fit_ridge


def test_thin_svd_matches_numpy():
    matrix = np.random.default_rng(0).standard_normal((30, 80)).astype(np.float32)
    u, s, vt = _thin_svd(matrix)
    np.testing.assert_allclose(s, np.linalg.svd(matrix, compute_uv=False), rtol=1e-4)
    np.testing.assert_allclose((u * s) @ vt, matrix, atol=1e-4)


def test_recovers_linear_map_with_missing_labels():
    rng = np.random.default_rng(1)
    n, p = 400, 60
    weight = rng.standard_normal((2, p)) / np.sqrt(p)
    inputs = rng.standard_normal((n + 100, p)).astype(np.float32)
    labels = inputs @ weight.T + 0.3 + 0.01 * rng.standard_normal((n + 100, 2))
    labels[:n][rng.random((n, 2)) < 0.3] = np.nan
    fitted, bias, alpha, _ = fit_ridge(inputs[:n], labels[:n], inputs[n:], labels[n:],
                                    alphas=(1e-2, 1e4))
    assert (alpha == 1e-2).all()  # the weak penalty wins on validation
    np.testing.assert_allclose(fitted, weight, atol=0.01)
    np.testing.assert_allclose(bias, 0.3, atol=0.01)


def test_label_without_values_gets_zero_weights():
    rng = np.random.default_rng(2)
    inputs = rng.standard_normal((50, 10)).astype(np.float32)
    labels = np.column_stack([inputs[:, 0], np.full(50, np.nan)])
    weight, bias, _, _ = fit_ridge(inputs[:40], labels[:40], inputs[40:], labels[40:])
    assert (weight[1] == 0).all() and bias[1] == 0
    assert np.isfinite(weight).all()


def test_leave_one_out_predictions_match_refits():
    rng = np.random.default_rng(3)
    inputs = rng.standard_normal((40, 15)).astype(np.float32)
    labels = (inputs @ rng.standard_normal(15) + 0.5 * rng.standard_normal(40))[:, None]
    _, _, alpha, loo = fit_ridge(inputs[:30], labels[:30], inputs[30:], labels[30:],
                                 alphas=(5.0,))
    for i in (0, 7, 29):
        keep = np.arange(30) != i
        weight, bias, _, _ = fit_ridge(inputs[:30][keep], labels[:30][keep], inputs[30:],
                                       labels[30:], alphas=(5.0,))
        assert loo[i, 0] == pytest.approx(float(inputs[i] @ weight[0] + bias[0]), abs=1e-3)
