"""The Cannon on a toy problem with a known quadratic truth, and ridge on a linear truth."""
import numpy as np
import pytest

from desi_abundances.evaluation import cannon, cannon_fit, peers

N_LABELS = 5
PIVOTS = np.array([5000.0, 3.0, -0.2, 0.1, 0.0])
SCALES = np.array([500.0, 0.8, 0.3, 0.1, 0.1])
SNR = 100.0


def _toy(n_train=600, n_test=200, n_pixels=200, scatter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    n_terms = cannon.term_exponents(N_LABELS).shape[0]
    theta = rng.normal(scale=0.02, size=(n_pixels, n_terms))
    theta[:, 0] = 1.0

    def make(n):
        x = rng.normal(size=(n, N_LABELS))
        clean = cannon.design_matrix(x) @ theta.T
        noise = rng.normal(size=clean.shape) * np.sqrt(1 / SNR**2 + scatter**2)
        return x * SCALES + PIVOTS, clean + noise, np.full(clean.shape, SNR**2), x

    return theta, make(n_train), make(n_test)


def _noise_limit(theta, x_scaled):
    """Cramer-Rao bound of each star's labels under the true model (physical units)."""
    truth = cannon.CannonModel(
        [f"l{k}" for k in range(N_LABELS)], PIVOTS, SCALES, 2, theta,
        np.zeros(len(theta)), np.ones(len(theta), bool), 0.0,
    )
    _, jacobian = cannon_fit._model_and_jacobian(x_scaled, *truth.quadratic_form())
    fisher = np.einsum("npk,npl->nkl", jacobian, jacobian) * SNR**2
    return np.sqrt(np.einsum("nkk->nk", np.linalg.inv(fisher))) * SCALES


def test_design_matrix_matches_term_exponents():
    x = np.array([[2.0, 3.0, 5.0]])
    exponents = cannon.term_exponents(3)
    expected = np.prod(x[:, None, :] ** exponents[None], axis=2)
    assert exponents.shape[0] == 10
    np.testing.assert_allclose(cannon.design_matrix(x), expected)
    assert cannon.term_exponents(24).shape[0] == 325


def test_cannon_recovers_labels_at_the_noise_limit():
    theta, (train_labels, train_flux, train_ivar, _), (test_labels, test_flux, test_ivar,
                                                        x_test) = _toy()
    model = cannon.train_cannon(train_labels, train_flux, train_ivar,
                                [f"l{k}" for k in range(N_LABELS)], regularization=0.0)
    fit = cannon_fit.fit_labels(model, test_flux, test_ivar, initial_labels=model.pivots[None])
    assert fit.converged.all()
    residual = fit.labels - test_labels
    # residuals in units of each star's Cramer-Rao bound: spread ~1 at the noise limit
    # (tolerance: 200 test stars, a model estimated from 600 training stars)
    relative = residual / _noise_limit(theta, x_test)
    np.testing.assert_array_less(relative.std(axis=0), 1.2)
    np.testing.assert_array_less(0.85, relative.std(axis=0))
    # formal errors are calibrated
    z = residual / fit.errors
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=0.15)
    # no intrinsic scatter in the truth: the fitted one is far below the noise
    assert np.median(model.scatter) < 0.2 / SNR


def test_cannon_measures_intrinsic_scatter():
    _, (labels, flux, ivar, _), _ = _toy(n_train=800, n_test=10, n_pixels=60, scatter=0.03)
    model = cannon.train_cannon(labels, flux, ivar, [f"l{k}" for k in range(N_LABELS)])
    assert np.median(model.scatter) == pytest.approx(0.03, rel=0.1)


def test_cannon_rejects_missing_labels_and_handles_masked_pixels():
    _, (labels, flux, ivar, _), (test_labels, test_flux, test_ivar, _) = _toy(n_pixels=80)
    broken = labels.copy()
    broken[3, 2] = np.nan
    with pytest.raises(ValueError, match="l2"):
        cannon.train_cannon(broken, flux, ivar, [f"l{k}" for k in range(N_LABELS)])
    ivar = ivar.copy()
    ivar[:, :10] = 0.0  # ten pixels masked everywhere: not modelled
    model = cannon.train_cannon(labels, flux, ivar, [f"l{k}" for k in range(N_LABELS)])
    assert not model.pixel_used[:10].any() and model.pixel_used[10:].all()
    test_ivar = test_ivar.copy()
    test_ivar[0] = 0.0  # a star without data gets NaN labels
    fit = cannon_fit.fit_labels(model, test_flux, test_ivar)
    assert np.isnan(fit.labels[0]).all()
    assert np.isfinite(fit.labels[1:]).all()


def test_ridge_recovers_a_linear_truth_and_picks_alpha_on_validation():
    rng = np.random.default_rng(5)
    n_pixels, names = 150, ["teff", "fe_h"]
    weights = rng.normal(size=(n_pixels, 2))

    def make(n):
        labels = rng.normal(size=(n, 2)) * [300.0, 0.3] + [5000.0, -0.2]
        flux = 1.0 + ((labels - [5000.0, -0.2]) / [300.0, 0.3]) @ weights.T * 0.01
        flux += rng.normal(scale=0.002, size=flux.shape)
        return flux, np.full(flux.shape, 1 / 0.002**2), np.zeros(flux.shape, bool), labels

    train, validation, test = make(400), make(150), make(150)
    train[3][:20, 1] = np.nan  # missing references are excluded, not zeroed
    peer = peers.fit_ridge(*train, *validation, names, alphas=(1e-3, 1.0, 1e3, 1e6))
    prediction, errors = peer.predict(*test[:3])
    residual = prediction - test[3]
    assert np.abs(residual.mean(axis=0)).max() < 0.05 * np.array([300, 0.3]).max()
    np.testing.assert_array_less(residual.std(axis=0), [15.0, 0.015])  # ~5% of the range
    assert peer.alphas["teff"] < 1e6  # huge alpha shrinks to the mean: validation rejects it
    assert errors.shape == prediction.shape
    # the dual solution is sklearn's Ridge fitted on each label's known stars
    from sklearn.linear_model import Ridge

    known = np.isfinite(train[3][:, 1])
    features = peer.scaling.transform(train[0], np.ones(train[0].shape, bool))
    reference = Ridge(alpha=peer.alphas["fe_h"]).fit(features[known], train[3][known, 1])
    expected = reference.predict(peer.scaling.transform(test[0], np.ones(test[0].shape, bool)))
    np.testing.assert_allclose(prediction[:, 1], expected, rtol=0, atol=1e-6)
    assert errors[0, 1] == pytest.approx(peer.validation_scatter["fe_h"])
    # a masked pixel does not break the prediction
    flux, ivar, mask = (a.copy() for a in test[:3])
    mask[:, :5] = True
    masked, _ = peer.predict(flux, ivar, mask)
    assert np.isfinite(masked).all()


def test_screened_starts_agree_with_exhaustive_starts():
    """LM from the 2 best of 5 candidates (and retries of poor fits) finds the optima of LM
    from all 5; so does LM from the pivots with retries."""
    _, (labels, flux, ivar, _), (test_labels, test_flux, test_ivar, _) = _toy(
        n_train=300, n_test=40, n_pixels=80
    )
    model = cannon.train_cannon(labels, flux, ivar, [f"l{k}" for k in range(N_LABELS)])
    starts = np.vstack([model.pivots, labels[:4]])
    screened = cannon_fit.fit_labels(model, test_flux, test_ivar, initial_labels=starts,
                                 lm_starts=2, screen_starts=True)
    exhaustive = cannon_fit.fit_labels(model, test_flux, test_ivar, initial_labels=starts,
                                   lm_starts=None)
    np.testing.assert_allclose(screened.labels, exhaustive.labels, rtol=0,
                               atol=0.05 * screened.errors.max())
    assert screened.converged.all()
    pivot_first = cannon_fit.fit_labels(model, test_flux, test_ivar, initial_labels=starts)
    np.testing.assert_allclose(pivot_first.labels, exhaustive.labels, rtol=0,
                               atol=0.05 * screened.errors.max())
