"""Names of the metrics logged to MLflow: one rule, so every name says whose it is and what
stars (split, S/N bin or window) it covers.

MLflow's chart view groups a metric into the section named by everything before its last
``/`` and sorts the sections by name (code-unit order: digits before letters); its run
table and Compare view list metrics by name. Hence:

* ``0_headline/<method>/<metric>/<label>``: the headline numbers (robust scatter, z std,
  68% coverage) of the network on the test split, the first sections a person sees;
* ``<method>/test/<label>.<metric>``: every test metric of ``network``, ``ridge``, ``cannon``;
  ``<method>/test/labels_won``;
* ``network/validation/<label>.<metric>`` and ``network/training/<name>``: the training
  pipeline's validation scatter and bookkeeping; ``network/loss/train`` and
  ``network/loss/validation``: the per-epoch losses;
* ``network/crb_ratio/<label>.<range>``, ``network/crb_ratio_net_of_apogee/<label>.<range>``
  and ``information_limit/crb_median/<label>.<range>``, ``information_limit/seconds``: the
  information limit, where ``<range>`` is ``snr_bin_<lo>-<hi>`` (a bin of ``snr_bin_edges``;
  ``<lo>-up`` when open) or ``snr_window_<lo>-<hi>`` (a centred window).
"""
from __future__ import annotations

from collections.abc import Mapping

HEADLINE = "0_headline"
"""Section prefix of the headline metrics (sorts before every other section)."""

HEADLINE_METRICS: tuple[str, ...] = ("robust_std", "z_std", "coverage_68")
"""Metric suffixes shown in the headline sections."""

INFORMATION_LIMIT = "information_limit"
"""Section of the metrics that belong to the bound itself, not to a method."""


def label_metric(method: str, label: str, metric: str) -> str:
    """``<method>/test/<label>.<metric>`` (e.g. ``ridge/test/fe_h.robust_std``)."""
    return f"{method}/test/{label}.{metric}"


def headline_metric(method: str, label: str, metric: str) -> str:
    """``0_headline/<method>/<metric>/<label>`` (e.g. ``0_headline/network/z_std/fe_h``)."""
    return f"{HEADLINE}/{method}/{metric}/{label}"


def method_metric(method: str, name: str) -> str:
    """``<method>/test/<name>`` for a method-wide test number (``labels_won``)."""
    return f"{method}/test/{name}"


def validation_metric(label: str, metric: str) -> str:
    """``network/validation/<label>.<metric>`` (training pipeline, validation split)."""
    return f"network/validation/{label}.{metric}"


def training_metric(name: str) -> str:
    """``network/training/<name>`` (best_epoch, epochs_run, training_seconds, ...)."""
    return f"network/training/{name}"


LOSS_TRAIN = "network/loss/train"
LOSS_VALIDATION = "network/loss/validation"
"""Keys of the per-epoch loss histories (one line chart each, one section)."""


def _edge(value: float) -> str:
    return f"{float(value):g}"


def snr_range(window: Mapping[str, object]) -> str:
    """``snr_bin_20-40``, ``snr_bin_30-up`` (open last bin, edge >= 1e5) or
    ``snr_window_15-25`` for a window of ``information_bounds.snr_windows``."""
    lo, hi = float(window["snr_min"]), float(window["snr_max"])
    upper = "up" if hi >= 1e5 else _edge(hi)
    kind = "bin" if window.get("kind") == "bin" else "window"
    return f"snr_{kind}_{_edge(lo)}-{upper}"


def information_metric(quantity: str, label: str, range_name: str) -> str:
    """``network/crb_ratio/<label>.<range>`` (the network's scatter over the bound, also
    ``crb_ratio_net_of_apogee``) or ``information_limit/crb_median/<label>.<range>``."""
    owner = INFORMATION_LIMIT if quantity == "crb_median" else "network"
    return f"{owner}/{quantity}/{label}.{range_name}"


def training_names(metrics: Mapping[str, float], labels: list[str]) -> dict[str, float]:
    """The training pipeline's validation metrics (``<label>_residual_std``, ``best_epoch``,
    ...) under their MLflow names (:func:`validation_metric`, :func:`training_metric`)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        label = next((lab for lab in sorted(labels, key=len, reverse=True)
                      if key.startswith(f"{lab}_")), None)
        name = (validation_metric(label, key[len(label) + 1:]) if label is not None
                else training_metric(key))
        out[name] = float(value)
    return out
