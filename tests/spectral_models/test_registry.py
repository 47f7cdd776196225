"""The spectral-model registry: built-ins load by name on first lookup, the emulator
registers itself, an unknown name lists the known ones."""
import subprocess
import sys

import pytest

from desi_abundances import spectral_models
from desi_abundances.spectral_models import registry


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown spectral model 'nope'") as error:
        spectral_models.build("nope")
    assert "analytic" in str(error.value) and "emulator" in str(error.value)


def test_register_and_build_a_model():
    made = []
    spectral_models.register("toy_for_registry_test", lambda **kwargs: made.append(kwargs) or 1)
    assert spectral_models.build("toy_for_registry_test", scale=2.0) == 1
    assert made == [{"scale": 2.0}]
    assert "toy_for_registry_test" in spectral_models.names()


def test_the_emulator_registers_itself():
    from desi_abundances.emulator import EmulatorSpectralModel

    assert registry.factory("emulator") is EmulatorSpectralModel
    assert set(registry.BUILTIN_PROVIDERS) <= set(spectral_models.names())


def test_the_analytic_model_loads_without_the_emulator_or_torch():
    code = ("import sys; from desi_abundances import spectral_models; "
            "m = spectral_models.build('analytic', wavelength_min=5000.0, wavelength_max=5010.0); "
            "print(type(m).__name__, 'torch' in sys.modules, "
            "'desi_abundances.emulator' in sys.modules, "
            "any(k.startswith('desi_abundances.mock') for k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["AnalyticSpectralModel", "False", "False", "False"]
