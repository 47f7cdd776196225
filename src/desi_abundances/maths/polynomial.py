"""Polynomial design matrices in the labels: constant, linear and quadratic terms.

The order of the terms is fixed: ``[1, x_0 .. x_{K-1}, x_i x_j (i <= j)]`` with the
quadratic pairs in the order of ``combinations_with_replacement(range(K), 2)`` (which
``np.triu_indices(K)`` walks too): ``1 + K + K(K+1)/2`` terms for order 2. The Cannon and
the network's quadratic spectrum model both use it.
"""
from __future__ import annotations

from itertools import combinations_with_replacement

import numpy as np


def term_exponents(n_labels: int, order: int = 2) -> np.ndarray:
    """Exponents of the design terms, (n_terms, n_labels) int: constant, linear, quadratic."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}")
    rows = [np.zeros(n_labels, dtype=np.int64)]
    for k in range(n_labels):
        row = np.zeros(n_labels, dtype=np.int64)
        row[k] = 1
        rows.append(row)
    if order == 2:
        for i, j in combinations_with_replacement(range(n_labels), 2):
            row = np.zeros(n_labels, dtype=np.int64)
            row[i] += 1
            row[j] += 1
            rows.append(row)
    return np.array(rows)


def quadratic_pairs(n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) of the quadratic terms in :func:`design_matrix` order (i <= j)."""
    return np.triu_indices(n_labels)


def design_matrix(scaled_labels: np.ndarray, order: int = 2) -> np.ndarray:
    """Design vectors ``a(x)`` of scaled labels (n_stars, K) -> (n_stars, n_terms) float64."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}")
    x = np.atleast_2d(np.asarray(scaled_labels, dtype=np.float64))
    columns = [np.ones((x.shape[0], 1)), x]
    if order == 2:
        i, j = quadratic_pairs(x.shape[1])
        columns.append(x[:, i] * x[:, j])
    return np.concatenate(columns, axis=1)
