"""Tiny labelled spectra of two "libraries" (no download): preprocessed-like Spectra linear +
quadratic in teff, logg, fe_h, the crossmatch table with LIBRARY, and training and evaluation
settings small enough for a fold to train in a second."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.spectra import Spectra

LABELS = ["teff", "logg", "fe_h"]
N_PIXELS = 30
TRAINING = {
    "architecture": {"hidden_sizes": [8], "dropout": 0.0, "input_components": 0},
    "optimisation": {"max_epochs": 2, "batch_size": 32, "patience": 5, "progress_bar": False,
                     "seed": 1, "num_threads": 1, "device": "cpu"},
}
EVALUATION = {
    "seed": 1,
    "ridge": {"enabled": True, "alphas": [0.01, 1.0]},
    "cannon": {"enabled": True, "min_training_stars": 10, "max_training_stars": 100,
               "n_extra_starts": 1},
    "data_name": "REAL (tiny test libraries)",
}
STRATA = {"bins": {"teff": [5200.0], "logg": [3.5], "fe_h": [-1.0]}, "group_columns": ["LIBRARY"]}


def tiny_library_spectra(n: int = 160, seed: int = 0) -> tuple[Spectra, pd.DataFrame]:
    """(spectra, crossmatch): ``n`` stars, the first 3/4 in library A, the rest in B."""
    rng = np.random.default_rng(seed)
    labels = np.column_stack([rng.uniform(4200, 6200, n), rng.uniform(1.0, 4.8, n),
                              rng.uniform(-2.0, 0.3, n)])
    scaled = (labels - labels.mean(0)) / labels.std(0)
    response = rng.normal(scale=0.03, size=(N_PIXELS, len(LABELS)))
    flux = 1.0 + scaled @ response.T + 0.004 * (scaled[:, :1] ** 2) @ np.ones((1, N_PIXELS))
    snr = np.full(n, 50.0)
    flux += rng.normal(size=flux.shape) / snr[:, None]
    ivar = np.full((n, N_PIXELS), 2500.0, np.float32)
    meta = pd.DataFrame({"TARGETID": np.arange(5000, 5000 + n), "snr": snr})
    for k, label in enumerate(LABELS):
        meta[label] = labels[:, k]
        meta[f"{label}_err"] = [70.0, 0.15, 0.08][k]
    meta.attrs["is_mock"] = False
    spectra = Spectra(wavelength=5000.0 + np.arange(N_PIXELS, dtype=float),
                      flux=flux.astype(np.float32), ivar=ivar,
                      mask=np.zeros((n, N_PIXELS), bool), meta=meta)
    library = np.where(np.arange(n) < 3 * n // 4, "A", "B")
    crossmatch = pd.DataFrame({"TARGETID": meta["TARGETID"], "LIBRARY": library})
    return spectra, crossmatch
