"""Payne-style emulator of the Turbospectrum spectral library (labels -> normalised flux).

* :class:`EmulatorSpectralModel` satisfies ``spectral_models.SpectralModel`` and registers itself as ``emulator``.
* ``python -m desi_abundances.emulator.train`` trains it on ``data/spectral_library``.
"""
from desi_abundances.emulator.io import load_emulator, save_emulator
from desi_abundances.emulator.model import PayneNetwork
from desi_abundances.emulator.spectral_model import DEFAULT_EMULATOR_PATH, EmulatorSpectralModel

__all__ = ["EmulatorSpectralModel", "PayneNetwork", "load_emulator", "save_emulator",
           "DEFAULT_EMULATOR_PATH"]
