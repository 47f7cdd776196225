"""``ModelBundle``: everything inference needs to turn preprocessed spectra into labels, in one
object (weights, architecture, grid, input and label scalings, preprocessing settings, OOD
threshold, provenance). Stored as ONE ``.safetensors`` file by ``nn.bundle_io``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import desi_abundances
from desi_abundances.nn.network import LabelNetwork, build_network

BUNDLE_FORMAT_VERSION = 1


@dataclass
class ModelBundle:
    """A trained label network with its inputs' and outputs' conventions.

    Attributes:
        state_dict: network weights (``LabelNetwork.state_dict()``).
        architecture: ``nn.network.architecture_for`` dict.
        label_names: python label names, network output order (teff, logg, fe_h, ...).
        wavelength: (n_pixels,) rest-frame grid the network reads, Angstrom.
        pixel_median, pixel_iqr: (n_pixels,) per-pixel median and interquartile range of
            the normalised flux over the training split; inputs are (flux - median) / iqr.
        label_offset, label_scale: (n_labels,) physical = offset + scale * standardised
            (K for teff, dex otherwise).
        label_min, label_max: (n_labels,) range of the training labels (NaN when none).
        label_n_train: (n_labels,) number of valid training labels; labels with 0 are
            predicted NaN.
        preprocessing: the ``spectra.preprocess`` settings the inputs must be made with.
        ood_threshold: input distance (see ``nn.predict.input_distance``) above which a
            spectrum is unlike the training set (99.5th percentile over training stars).
        versions: package versions and bundle format.
        is_mock: trained on mock data.
        metrics: optional summary figures (validation scatter...), informational.
        error_calibration: ``{"net_scale": [a_k], "model_scale": [c_k],
            "epistemic_scale": [m_k]}`` per label (``nn.calibration``, fitted on the
            validation split; bundles without ``epistemic_scale`` use 1); empty: the
            network's own errors (times the epistemic factor) are reported.
    """

    state_dict: dict[str, torch.Tensor]
    architecture: dict[str, Any]
    label_names: list[str]
    wavelength: np.ndarray
    pixel_median: np.ndarray
    pixel_iqr: np.ndarray
    label_offset: np.ndarray
    label_scale: np.ndarray
    label_min: np.ndarray
    label_max: np.ndarray
    preprocessing: dict[str, Any]
    ood_threshold: float
    versions: dict[str, str]
    is_mock: bool
    label_n_train: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error_calibration: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_pixels, n_labels = self.wavelength.size, len(self.label_names)
        for name in ("pixel_median", "pixel_iqr"):
            if getattr(self, name).shape != (n_pixels,):
                raise ValueError(f"ModelBundle.{name} has shape {getattr(self, name).shape}, "
                                 f"expected ({n_pixels},)")
        for name in ("label_offset", "label_scale", "label_min", "label_max"):
            if getattr(self, name).shape != (n_labels,):
                raise ValueError(f"ModelBundle.{name} has shape {getattr(self, name).shape}, "
                                 f"expected ({n_labels},)")
        if self.label_n_train is None:
            self.label_n_train = np.ones(n_labels, np.int64)
        if self.architecture.get("n_inputs") != n_pixels:
            raise ValueError(f"architecture n_inputs {self.architecture.get('n_inputs')} != "
                             f"{n_pixels} wavelength pixels")
        if self.architecture.get("n_labels") != n_labels:
            raise ValueError(f"architecture n_labels {self.architecture.get('n_labels')} != "
                             f"{n_labels} label names")

    def network(self) -> LabelNetwork:
        """The network with the bundle's weights, in eval mode, on the CPU."""
        network = build_network(self.architecture)
        network.load_state_dict(self.state_dict)
        return network.eval()


def current_versions() -> dict[str, str]:
    """Versions recorded in a new bundle."""

    return {
        "bundle_format": str(BUNDLE_FORMAT_VERSION),
        "desi_abundances": str(getattr(desi_abundances, "__version__", "unknown")),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
