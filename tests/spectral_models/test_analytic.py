"""Analytic spectral model: protocol, registry, response to every label with lines."""
import numpy as np
import pandas as pd
import pytest

from desi_abundances import spectral_models
from desi_abundances.maths.air_vacuum import air_to_vacuum
from desi_abundances.spectral_models.analytic import AnalyticSpectralModel, equivalent_width
from desi_abundances.spectral_models.line_table import LINES
from desi_abundances.stellar.labels import ELEMENT_LABELS


@pytest.fixture(scope="module")
def model():
    return spectral_models.build("analytic")


def _star(**changes) -> pd.DataFrame:
    labels = {"teff": 4700.0, "logg": 2.5, "fe_h": -0.3, "vmic": 1.5}
    labels.update({name: 0.0 for name in ELEMENT_LABELS})
    labels.update(changes)
    return pd.DataFrame([labels])


def test_protocol_and_registry(model) -> None:
    assert isinstance(model, spectral_models.SpectralModel)
    assert isinstance(model, AnalyticSpectralModel)
    assert model.wavelength[0] <= 3550 and model.wavelength[-1] >= 9900
    flux = model.normalised_flux(_star())
    assert flux.shape == (1, model.wavelength.size) and flux.dtype == np.float32
    assert 0 < flux.min() and flux.max() <= 1.0


def test_line_table_is_vacuum_and_optical() -> None:
    assert all(3500 < row[0] < 10000 for row in LINES)
    ca_k = [row[0] for row in LINES if row[1] == "Ca II" and abs(row[0] - 3934.8) < 0.5]
    assert ca_k == [pytest.approx(float(air_to_vacuum(3933.663)), abs=1e-3)]


@pytest.mark.parametrize("label", ["teff", "logg", "fe_h", "vmic", *ELEMENT_LABELS])
def test_every_label_with_lines_changes_the_spectrum(model, label) -> None:
    step = {"teff": 100.0, "logg": 0.2, "vmic": 0.3}.get(label, 0.1)
    base = _star()
    shifted = _star(**{label: base[label].iloc[0] + step})
    change = np.abs(model.normalised_flux(shifted) - model.normalised_flux(base)).max()
    if label in ("p_fe", "s_fe"):  # no P or S lines in the table: no information
        assert change == 0.0
    else:
        assert change > 1e-3, label


def test_physical_trends(model) -> None:
    wave = model.wavelength
    h_alpha = float(air_to_vacuum(6562.797))
    hot, cool = model.normalised_flux(pd.concat([_star(teff=6300.0, logg=4.2), _star(teff=4500.0)]))
    assert equivalent_width(wave, hot, h_alpha, 15.0) > 2 * equivalent_width(wave, cool, h_alpha, 15.0)
    tio = model.normalised_flux(pd.concat([_star(teff=3700.0, logg=4.7), _star(teff=5200.0, logg=4.5)]))
    assert equivalent_width(wave, tio[0], 7120.0, 60.0) > 5 * equivalent_width(wave, tio[1], 7120.0, 60.0)
    poor, rich = model.normalised_flux(pd.concat([_star(fe_h=-2.0), _star(fe_h=0.2)]))
    assert poor.mean() > rich.mean()
