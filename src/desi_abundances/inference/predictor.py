"""What inference needs from a model (:class:`LabelPredictor`; the real one is
``nn.adapter.BundlePredictor``) and the check of its labels against ``params:labels``."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from desi_abundances.inference.errors import BundleMismatchError


class LabelPredictor(Protocol):
    """What inference needs from a model: labels, their training range, the OOD threshold,
    a fingerprint, and prediction in two steps so that they can overlap: ``prepare`` (numpy,
    e.g. preprocessing a coadd given radial velocities, km/s) and ``predict`` (the network)
    returning TARGETID, ``<label>``, ``<label>_err`` (K, dex) and ``input_distance``."""

    label_names: list[str]
    label_min: np.ndarray
    label_max: np.ndarray
    ood_threshold: float
    is_mock: bool
    fingerprint: str

    def prepare(self, coadd: Any, vrad_kms: np.ndarray) -> Any: ...

    def predict(self, prepared: Any) -> pd.DataFrame: ...


def check_labels(predictor: LabelPredictor, labels: Sequence[str] | None) -> None:
    """Refuse a model whose labels differ from the configured ``params:labels``.

    Raises:
        BundleMismatchError: naming the labels missing from, or extra in, the bundle.
    """
    if labels is None:
        return
    if list(predictor.label_names) != list(labels):
        missing = [label for label in labels if label not in predictor.label_names]
        extra = [label for label in predictor.label_names if label not in labels]
        raise BundleMismatchError(
            "model bundle labels do not match params:labels: "
            f"missing from the bundle {missing}, not in params:labels {extra}"
            + ("" if missing or extra else " (same labels, different order)")
            + "; retrain the model or fix conf/base/parameters.yml"
        )
