"""The registry of spectral models: ``register(name, factory)``, ``build(name, **kwargs)``,
``names()``.

A spectral model is anything that satisfies :class:`SpectralModel`. The built-in providers
(:data:`BUILTIN_PROVIDERS`) are imported by module name the first time their name is looked
up: that is what keeps this low floor from importing the upper ones (the emulator and its
torch weights live above it and register themselves when their module is imported), and
what keeps torch off the import path of a run that only uses the analytic model.
"""
from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


@runtime_checkable
class SpectralModel(Protocol):
    """What a generating spectral model provides.

    Attributes:
        wavelength: (n_wave,) rest-frame VACUUM wavelength grid, Angstrom, covering at least
            3550-9900 A; uniform in ln(wavelength) is convenient (Doppler shifts are index
            offsets) but not required.
        resolving_power: the model's native resolving power R = lambda / FWHM (``np.inf``
            for intrinsic line profiles); the instrument adds the rest of DESI's LSF.
    """

    wavelength: np.ndarray
    resolving_power: float

    def normalised_flux(self, labels: pd.DataFrame) -> np.ndarray:
        """(n, n_wave) float32 continuum-normalised flux for the rows of ``labels`` (python
        label names: teff, logg, fe_h, vmic, <x>_fe)."""
        ...


BUILTIN_PROVIDERS: dict[str, str] = {
    "analytic": "desi_abundances.spectral_models.analytic",
    "emulator": "desi_abundances.emulator.spectral_model",
}
"""Name -> module that registers it on import (loaded on first lookup)."""

_REGISTRY: dict[str, Callable[..., SpectralModel]] = {}


def register(name: str, factory: Callable[..., SpectralModel]) -> Callable[..., SpectralModel]:
    """Make ``factory(**kwargs)`` buildable as ``name`` (a later call replaces it); returns
    ``factory``."""
    _REGISTRY[str(name)] = factory
    return factory


def _load_builtin(name: str) -> None:
    module = BUILTIN_PROVIDERS.get(name)
    if module is not None and name not in _REGISTRY:
        importlib.import_module(module)  # the module calls register(name, ...)


def names() -> list[str]:
    """Every buildable name: the registered ones and the built-in providers, sorted."""
    return sorted(set(_REGISTRY) | set(BUILTIN_PROVIDERS))


def factory(name: str) -> Callable[..., SpectralModel]:
    """The factory registered as ``name``.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    _load_builtin(name)
    if name not in _REGISTRY:
        raise ValueError(f"unknown spectral model {name!r}; known: {', '.join(names())}")
    return _REGISTRY[name]


def build(name: str, **kwargs: Any) -> SpectralModel:
    """Build the spectral model registered as ``name`` with ``kwargs``."""
    return factory(name)(**kwargs)
