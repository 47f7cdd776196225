"""The polynomial design matrix: term order, count and agreement with the exponents."""
import numpy as np
import pytest

from desi_abundances.maths.polynomial import design_matrix, quadratic_pairs, term_exponents


def test_quadratic_terms_count_and_order():
    x = np.array([[2.0, 3.0, 5.0]])
    assert design_matrix(x).tolist() == [[1, 2, 3, 5, 4, 6, 10, 9, 15, 25]]
    assert design_matrix(x, order=1).tolist() == [[1, 2, 3, 5]]
    assert term_exponents(24).shape == (325, 24)  # 1 + K + K(K+1)/2
    i, j = quadratic_pairs(3)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]


@pytest.mark.parametrize("order", [1, 2])
def test_design_matrix_is_the_product_of_the_exponents(order):
    x = np.random.default_rng(3).normal(size=(7, 4))
    exponents = term_exponents(4, order)
    expected = np.prod(x[:, None, :] ** exponents[None], axis=2)
    assert np.allclose(design_matrix(x, order), expected)


def test_unknown_order_is_refused():
    with pytest.raises(ValueError, match="order"):
        design_matrix(np.zeros((1, 2)), order=3)
    with pytest.raises(ValueError, match="order"):
        term_exponents(2, order=0)
