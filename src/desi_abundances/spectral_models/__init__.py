"""Spectral models: labels -> continuum-normalised rest-frame spectra, selected by name.

``registry`` (register / build / names) is the one way to reach a generating model; the
analytic line-table model lives here (``analytic``, ``line_table``), the Payne-style
emulator registers itself from ``desi_abundances.emulator``. Low floor: imports only the
neutral maths, ``stellar`` and ``constants``.
"""
from desi_abundances.spectral_models.registry import SpectralModel, build, names, register

__all__ = ["SpectralModel", "build", "names", "register"]
