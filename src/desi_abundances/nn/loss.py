"""The training loss: heteroscedastic Gaussian negative log-likelihood on standardised labels
that skips missing labels and adds the APOGEE uncertainty in quadrature."""
from __future__ import annotations

import torch


def label_nll(mean: torch.Tensor, log_variance: torch.Tensor, target: torch.Tensor,
              target_error: torch.Tensor, beta: float = 0.0) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood over the valid (star, label) entries.

    For star i and label j, with the network's mean m_ij and log-variance s_ij, the
    APOGEE label y_ij and its error e_ij (all in standardised units):

        v_ij  = exp(s_ij) + e_ij^2
        L_ij  = 0.5 * (log v_ij + (y_ij - m_ij)^2 / v_ij)
        loss  = sum_valid w_ij L_ij / n_valid,   valid = y_ij and e_ij finite

    * Missing or flagged labels (NaN) are simply left out, star by star and label by label,
      so a star with only [Fe/H] still teaches [Fe/H]; entries never become NaN gradients
      (they are replaced before the arithmetic, not masked after).
    * Adding e_ij^2 means a noisy APOGEE label pulls less on the mean (weight 1/v_ij) and
      exp(s_ij) learns only the scatter the APOGEE errors do not explain: the
      network's own per-star, per-label uncertainty, what ``predict_labels`` reports.
    * ``beta`` > 0 is the beta-NLL of Seitzer et al. (2022): each term is weighted by
      w_ij = stop_gradient(v_ij)^beta, which stops the NLL from neglecting the mean of
      stars it has declared uncertain (beta = 0: plain NLL, w = 1; beta = 0.5 recommended).

    Args:
        mean, log_variance: (n, n_labels) network outputs.
        target, target_error: (n, n_labels); NaN where the label is missing.
        beta: beta-NLL exponent in [0, 1].

    Returns:
        scalar tensor (0 when no entry is valid, still differentiable).
    """
    valid = torch.isfinite(target) & torch.isfinite(target_error)
    target = torch.where(valid, target, mean.detach())
    error = torch.where(valid, target_error, torch.zeros_like(target_error))
    variance = torch.exp(log_variance) + error * error
    terms = 0.5 * (torch.log(variance) + (target - mean) ** 2 / variance)
    if beta > 0:
        terms = terms * variance.detach() ** beta
    terms = torch.where(valid, terms, torch.zeros_like(terms))
    return terms.sum() / valid.sum().clamp(min=1)
