"""Cramer-Rao bound on a linear toy model, where it is known exactly."""
import numpy as np
import pandas as pd
import pytest
import torch

from desi_abundances.evaluation import cramer_rao as cr

RNG = np.random.default_rng(42)
N_PIX, N_LAB = 40, 3
A = RNG.normal(size=(N_PIX, N_LAB))
A[:, 0] *= 1e-3  # a label in "K": tiny derivative per unit
B = RNG.normal(size=N_PIX)


def linear_model(labels: torch.Tensor) -> torch.Tensor:
    return labels @ torch.as_tensor(A.T, dtype=labels.dtype) + torch.as_tensor(B, dtype=labels.dtype)


def exact_bound(ivar_row, a=A):
    fisher = a.T @ np.diag(ivar_row) @ a
    return np.sqrt(np.diag(np.linalg.inv(fisher))), 1 / np.sqrt(np.diag(fisher))


def test_jacobian_of_linear_model_is_its_matrix():
    labels = torch.tensor([[5000.0, 2.5, -0.3], [4000.0, 1.0, 0.2]])
    jac = cr.model_jacobian(linear_model, labels)
    assert jac.shape == (2, N_PIX, N_LAB)
    assert np.allclose(jac[1].numpy(), A, atol=1e-6)


def test_bound_matches_exact_inverse_fisher():
    ivar = RNG.uniform(50, 400, size=(2, N_PIX))
    ivar[1, :10] = 0.0  # masked pixels carry no information
    labels = np.array([[5000.0, 2.5, -0.3], [4000.0, 1.0, 0.2]])
    bound = cr.cramer_rao_bound(linear_model, labels, ivar)
    for s in range(2):
        marginal, _ = exact_bound(ivar[s])
        assert np.allclose(bound[s], marginal, rtol=1e-4)
    _, conditional = cr.cramer_rao_from_fisher(cr.fisher_matrix(cr.model_jacobian(linear_model, labels), ivar))
    assert np.allclose(conditional[0], exact_bound(ivar[0])[1], rtol=1e-4)
    assert np.all(bound >= conditional - 1e-12)  # marginalising never helps


def test_bound_is_the_scatter_of_weighted_least_squares():
    ivar = np.full(N_PIX, 100.0)
    truth = np.array([5000.0, 2.5, -0.3])
    noise = RNG.normal(size=(4000, N_PIX)) / np.sqrt(ivar)
    data = truth @ A.T + B + noise
    weights = np.diag(ivar)
    solve = np.linalg.solve(A.T @ weights @ A, A.T @ weights @ (data - B).T).T
    bound = cr.cramer_rao_bound(linear_model, truth[None], ivar[None])[0]
    assert np.allclose(solve.std(0), bound, rtol=0.05)


def test_uninformative_label_is_infinite_and_others_unchanged():
    a = np.c_[A, np.zeros(N_PIX)]
    def model(x):
        return x @ torch.as_tensor(a.T, dtype=x.dtype)
    ivar = np.full((1, N_PIX), 100.0)
    bound = cr.cramer_rao_bound(model, np.zeros((1, 4)), ivar)[0]
    assert np.isinf(bound[3])
    assert np.allclose(bound[:3], exact_bound(ivar[0])[0], rtol=1e-4)


def test_batching_and_dataframe_output():
    labels = RNG.normal(size=(7, N_LAB))
    ivar = RNG.uniform(10, 100, size=(7, N_PIX))
    whole = cr.cramer_rao_bound(linear_model, labels, ivar)
    batched = cr.cramer_rao_bound(linear_model, labels, ivar, label_names=["teff", "logg", "fe_h"], batch_size=3)
    assert isinstance(batched, pd.DataFrame) and list(batched.columns) == ["teff_crb", "logg_crb", "fe_h_crb"]
    assert np.allclose(batched.to_numpy(), whole)


def test_bad_inputs():
    with pytest.raises(ValueError):
        cr.fisher_matrix(np.zeros((1, 5, 2)), np.zeros((1, 4)))
    with pytest.raises(ValueError):
        cr.fisher_matrix(np.zeros((1, 5, 2)), -np.ones((1, 5)))
    with pytest.raises(ValueError):
        cr.cramer_rao_bound(linear_model, np.zeros((2, 3)), np.ones((3, N_PIX)))


def test_projection_to_data_pixels():
    from scipy import sparse
    # data pixel k = mean of model pixels 2k and 2k+1 (a toy LSF + resampling)
    rows = np.repeat(np.arange(N_PIX // 2), 2)
    matrix = sparse.csr_matrix((np.full(N_PIX, 0.5), (rows, np.arange(N_PIX))), shape=(N_PIX // 2, N_PIX))
    ivar = np.full((1, N_PIX // 2), 80.0)
    bound = cr.cramer_rao_bound(linear_model, np.zeros((1, N_LAB)), ivar, projection=matrix)[0]
    assert np.allclose(bound, exact_bound(ivar[0], a=matrix @ A)[0], rtol=1e-4)
