"""The emulator as a spectral model (``spectral_models.SpectralModel``), registered as
``emulator`` when this module is imported.

    model = EmulatorSpectralModel()                # data/spectral_library/emulator/...
    flux = model.normalised_flux(labels_frame)     # (n, n_wave) float32

Labels outside the training range are clipped to it (an MLP extrapolates badly); the count
of clipped values of the last call is kept in ``last_clipped``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from desi_abundances.emulator.io import load_emulator
from desi_abundances.spectral_models.registry import register
from desi_abundances.synthesis.library import library_wavelength

DEFAULT_EMULATOR_PATH = Path("data/spectral_library/emulator/payne_emulator.safetensors")


def _resolve_default(path: Path | str | None) -> Path:
    if path is not None:
        return Path(path)
    if DEFAULT_EMULATOR_PATH.exists():
        return DEFAULT_EMULATOR_PATH
    # run from elsewhere: the repository copy next to the package
    return Path(__file__).resolve().parents[3] / DEFAULT_EMULATOR_PATH


class EmulatorSpectralModel:
    """Payne-style emulator of the Turbospectrum library.

    Attributes:
        wavelength: (n_wave,) rest-frame vacuum Angstrom (3550-9900 A, uniform in ln lambda).
        resolving_power: native R of the emulated spectra (Gaussian LSF).
        grid_resolution: 1 / d ln(lambda) of ``wavelength`` (2 R: two pixels per FWHM).
        label_names: the labels the network uses (python names); other columns are ignored.
        label_min, label_max: training range (physical units).
        metadata: everything stored with the weights (library version, held-out errors).
    """

    def __init__(self, path: Path | str | None = None, clip_labels: bool = True,
                 batch_size: int = 2048) -> None:
        self.path = _resolve_default(path)
        self.network, self.metadata = load_emulator(self.path)
        self.wavelength = library_wavelength(self.metadata["resolving_power"],
                                             tuple(self.metadata["wavelength_range"]))
        if self.wavelength.size != self.network.n_pixels:
            raise ValueError(f"{self.path}: grid has {self.wavelength.size} pixels, network "
                             f"{self.network.n_pixels}")
        self.resolving_power = float(self.metadata["resolving_power"])
        self.grid_resolution = float(1.0 / np.mean(np.diff(np.log(self.wavelength))))
        """1 / d ln(lambda) of the grid (the mock's Doppler shifts use it)."""
        self.label_names: list[str] = list(self.metadata["label_names"])
        self.label_min = np.asarray(self.metadata["label_min"], dtype=float)
        self.label_max = np.asarray(self.metadata["label_max"], dtype=float)
        self.clip_labels = clip_labels
        self.batch_size = int(batch_size)
        self.last_clipped = 0

    def label_array(self, labels: pd.DataFrame) -> np.ndarray:
        """(n, n_labels) float32 inputs from a labels frame; raises naming missing columns."""
        missing = [n for n in self.label_names if n not in labels.columns]
        if missing:
            raise KeyError(f"labels lack the emulator's columns {missing}")
        values = labels[self.label_names].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            bad = sorted({self.label_names[j] for j in np.where(~np.isfinite(values))[1]})
            raise ValueError(f"non-finite labels in columns {bad}")
        if self.clip_labels:
            clipped = np.clip(values, self.label_min, self.label_max)
            self.last_clipped = int(np.sum(clipped != values))
            values = clipped
        return values.astype(np.float32)

    def flux_torch(self, labels: torch.Tensor) -> torch.Tensor:
        """Differentiable (n, n_labels) physical labels -> (n, n_wave) flux (no clipping)."""
        return self.network(labels)

    def normalised_flux(self, labels: pd.DataFrame) -> np.ndarray:
        """(n, n_wave) float32 continuum-normalised rest-frame flux, clipped to [0, 1] (an
        absorption spectrum; the network can overshoot by a few percent)."""
        inputs = self.label_array(labels)
        out = np.empty((inputs.shape[0], self.wavelength.size), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, inputs.shape[0], self.batch_size):
                batch = torch.from_numpy(inputs[start : start + self.batch_size])
                out[start : start + batch.shape[0]] = self.network(batch).numpy()
        np.clip(out, 0.0, 1.0, out=out)
        return out


register("emulator", EmulatorSpectralModel)
