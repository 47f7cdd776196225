"""Stellar labels and the relations between them that every spectral model assumes.

Units: teff in K, logg in dex (cgs), fe_h / <x>_fe in dex, vmic in km/s.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from desi_abundances.constants import APOGEE_DR17_ELEMENTS

ELEMENT_LABELS: tuple[str, ...] = tuple(f"{el.lower()}_fe" for el in APOGEE_DR17_ELEMENTS)
"""Python names of every [X/Fe] label, in the project's order (c_fe, ci_fe, ..., ce_fe)."""

STELLAR_LABELS: tuple[str, ...] = ("teff", "logg", "fe_h", "vmic", *ELEMENT_LABELS)
"""The labels a generating spectral model reads (and ``sample_stellar_labels`` returns)."""


def microturbulence(teff: np.ndarray, logg: np.ndarray, rng: Any) -> np.ndarray:
    """vmic (km/s): 2.24 - 0.3 logg for giants (APOGEE-like), 1 + 4e-4 (Teff - 5500) for
    dwarfs, with 0.1 km/s scatter drawn from ``rng`` (a numpy Generator)."""
    giant = np.clip(2.24 - 0.3 * logg, 0.5, 2.8)
    dwarf = np.clip(1.0 + 4e-4 * (teff - 5500.0), 0.5, 2.0)
    weight = np.clip((logg - 3.5) / 0.5, 0.0, 1.0)
    return np.clip((1 - weight) * giant + weight * dwarf + rng.normal(0, 0.1, teff.size), 0.3, 3.0)


class _NoScatter:
    """Stands in for a numpy Generator whose normal draws are all at the mean, so a
    relation with scatter returns its mean relation."""

    @staticmethod
    def normal(loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> np.ndarray:
        return np.broadcast_to(np.asarray(loc, dtype=float), size if size is not None else ()
                               ).astype(float)


def mean_microturbulence(teff: np.ndarray, logg: np.ndarray) -> np.ndarray:
    """vmic (km/s) of :func:`microturbulence`'s mean relation (no scatter) at the given Teff
    (K) and log g (dex)."""
    return microturbulence(np.asarray(teff, float), np.asarray(logg, float), _NoScatter())
