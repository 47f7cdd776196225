"""nn.loss.label_nll on hand-computed cases."""
from __future__ import annotations

import math

import pytest
import torch

from desi_abundances.nn.loss import label_nll

NAN = float("nan")


def _nll(y, m, s, e):
    v = math.exp(s) + e * e
    return 0.5 * (math.log(v) + (y - m) ** 2 / v)


def test_single_entry_matches_formula():
    mean, log_var = torch.tensor([[0.5]]), torch.tensor([[math.log(0.04)]])
    loss = label_nll(mean, log_var, torch.tensor([[1.0]]), torch.tensor([[0.3]]))
    assert float(loss) == pytest.approx(_nll(1.0, 0.5, math.log(0.04), 0.3), rel=1e-6)


def test_missing_labels_are_ignored_per_star_and_label():
    mean = torch.tensor([[0.0, 1.0], [2.0, 3.0]], requires_grad=True)
    log_var = torch.zeros(2, 2)
    target = torch.tensor([[1.0, NAN], [NAN, 2.0]])
    error = torch.tensor([[0.0, 0.1], [0.1, 0.5]])
    loss = label_nll(mean, log_var, target, error)
    expected = (_nll(1.0, 0.0, 0.0, 0.0) + _nll(2.0, 3.0, 0.0, 0.5)) / 2
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.isfinite(mean.grad).all()
    assert mean.grad[0, 1] == 0 and mean.grad[1, 0] == 0
    # a missing label value far from the prediction changes nothing
    target_other = target.clone()
    target_other[0, 1] = NAN
    assert float(label_nll(mean, log_var, target_other, error)) == pytest.approx(float(loss.detach()))


def test_label_error_reduces_weight():
    mean, log_var = torch.zeros(1, 1), torch.full((1, 1), math.log(0.01))
    target = torch.ones(1, 1)
    precise = label_nll(mean.requires_grad_(), log_var, target, torch.zeros(1, 1))
    (grad_precise,) = torch.autograd.grad(precise, mean)
    mean2 = torch.zeros(1, 1, requires_grad=True)
    noisy = label_nll(mean2, log_var, target, torch.ones(1, 1))
    (grad_noisy,) = torch.autograd.grad(noisy, mean2)
    # d/dm = -(y - m) / v with v = 0.01 vs 1.01: the noisy label pulls 101x less
    assert float(grad_precise) == pytest.approx(-100.0, rel=1e-5)
    assert float(grad_noisy) == pytest.approx(-1 / 1.01, rel=1e-5)


def test_missing_error_means_missing_label_and_all_missing_is_zero():
    mean = torch.zeros(2, 1, requires_grad=True)
    loss = label_nll(mean, torch.zeros(2, 1), torch.tensor([[1.0], [1.0]]),
                     torch.tensor([[NAN], [NAN]]))
    assert float(loss) == 0.0
    loss.backward()
    assert (mean.grad == 0).all()


def test_beta_nll_weights_terms_by_variance():
    mean, target, error = torch.zeros(1, 1), torch.ones(1, 1), torch.zeros(1, 1)
    log_var = torch.full((1, 1), math.log(4.0))
    plain = label_nll(mean, log_var, target, error, beta=0.0)
    weighted = label_nll(mean, log_var, target, error, beta=0.5)
    assert float(weighted) == pytest.approx(2.0 * float(plain), rel=1e-6)
