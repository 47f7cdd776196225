"""The model bundle as inference uses it: :class:`BundlePredictor` (``spectra.preprocess``
with the bundle's own settings, then ``nn.predict.predict_labels``) and
:func:`bundle_fingerprint`.

The bundle is checked once, when the predictor is made: its wavelength grid must be the one
``spectra.preprocess`` produces (DESI's brz grid) and its preprocessing settings known. Every
coadd is then preprocessed with exactly those settings, so the per-call check of
``predict_labels`` is skipped.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.desi.grids import brz_wavelength
from desi_abundances.nn.predict import IncompatibleSpectraError, check_compatible, predict_labels
from desi_abundances.spectra import preprocess, preprocessing_settings


class BundleMismatchError(RuntimeError):
    """The model bundle does not fit the configuration or the data."""


def bundle_fingerprint(bundle: Any) -> str:
    """SHA-256 of a model bundle's weights and metadata (stable across save/load)."""
    digest = hashlib.sha256()
    state = getattr(bundle, "state_dict", None) or getattr(bundle, "weights", None) or {}
    for name in sorted(state):
        tensor = state[name]
        array = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
        digest.update(name.encode())
        digest.update(str(array.dtype).encode())
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    for name in (
        "architecture", "label_names", "wavelength", "pixel_median", "pixel_iqr", "label_offset",
        "label_scale", "label_min", "label_max", "label_n_train", "preprocessing", "ood_threshold",
        "error_calibration",
    ):
        value = getattr(bundle, name, None)
        if value is None or (name == "error_calibration" and not value):
            continue  # an uncalibrated bundle keeps the fingerprint it had before the field
        digest.update(name.encode())
        if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
            digest.update(np.ascontiguousarray(np.asarray(value)).tobytes())
        else:
            digest.update(json.dumps(value, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class BundlePredictor:
    """An inference ``LabelPredictor`` over a ``nn.bundle.ModelBundle``: ``spectra.preprocess``
    with the bundle's own settings, then ``nn.predict.predict_labels``.

    Refuses, on construction, a bundle whose wavelength grid is not the one
    ``spectra.preprocess`` produces or whose preprocessing settings this code does not know.
    The network is built once per process (not pickled: a Dask worker builds its own from
    the scattered bundle).

    Raises:
        BundleMismatchError: naming the mismatch.
    """

    def __init__(self, bundle: Any, batch_size: int = 2048):
        try:
            preprocessing_settings(bundle.preprocessing)
            check_compatible(bundle, brz_wavelength(), None)
        except (IncompatibleSpectraError, ValueError) as exc:
            raise BundleMismatchError(f"model bundle refused: {exc}") from exc
        self.bundle = bundle
        self.batch_size = int(batch_size)
        self.label_names = list(bundle.label_names)
        self.label_min = np.asarray(bundle.label_min, dtype=np.float64)
        self.label_max = np.asarray(bundle.label_max, dtype=np.float64)
        n_train = getattr(bundle, "label_n_train", None)
        self.label_trained = (
            np.ones(len(self.label_names), bool) if n_train is None else np.asarray(n_train) > 0
        )
        self.ood_threshold = float(bundle.ood_threshold)
        self.is_mock = bool(getattr(bundle, "is_mock", False))
        self.fingerprint = bundle_fingerprint(bundle)
        self._network = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_network"] = None
        return state

    @property
    def network(self) -> Any:
        if self._network is None:
            self._network = self.bundle.network()
        return self._network

    def prepare(self, coadd: Any, vrad_kms: np.ndarray) -> Any:
        """``spectra.preprocess`` of a coadd with the bundle's settings (velocities km/s)."""
        return preprocess(coadd, vrad_kms, self.bundle.preprocessing)

    def predict(self, prepared: Any) -> pd.DataFrame:
        """Labels of spectra made by :meth:`prepare` (checked against the bundle once, in
        ``__init__``: not again per coadd)."""
        return predict_labels(self.bundle, prepared, batch_size=self.batch_size,
                              network=self.network, check=False)
