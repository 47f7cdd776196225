"""Analytic spectral model: protocol, registry, response to every label with lines."""
import numpy as np
import pandas as pd
import pytest

from desi_abundances.mock.line_table import LINES, air_to_vacuum, vacuum_to_air
from desi_abundances.mock.population import ELEMENT_LABELS
from desi_abundances.mock.spectral_model import (
    SpectralModel,
    build_spectral_model,
    equivalent_width,
)


@pytest.fixture(scope="module")
def model():
    return build_spectral_model("analytic")


def _star(**changes) -> pd.DataFrame:
    labels = {"teff": 4700.0, "logg": 2.5, "fe_h": -0.3, "vmic": 1.5}
    labels.update({name: 0.0 for name in ELEMENT_LABELS})
    labels.update(changes)
    return pd.DataFrame([labels])


def test_protocol_and_registry(model) -> None:
    assert isinstance(model, SpectralModel)
    assert model.wavelength[0] <= 3550 and model.wavelength[-1] >= 9900
    flux = model.normalised_flux(_star())
    assert flux.shape == (1, model.wavelength.size) and flux.dtype == np.float32
    assert 0 < flux.min() and flux.max() <= 1.0
    with pytest.raises(ValueError, match="unknown spectral model"):
        build_spectral_model("nope")


def test_air_vacuum_conversion() -> None:
    assert air_to_vacuum(6562.797) == pytest.approx(6564.61, abs=0.02)
    assert vacuum_to_air(air_to_vacuum(5000.0)) == pytest.approx(5000.0, abs=1e-3)
    assert all(3500 < row[0] < 10000 for row in LINES)


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


def test_star_labels_are_clipped_to_the_spectral_models_range():
    from desi_abundances.mock import spectral_model as registry
    from desi_abundances.mock.survey import clip_to_spectral_model

    class Ranged:
        label_names = ["teff", "fe_h"]
        label_min = np.array([4000.0, -2.0])
        label_max = np.array([6500.0, 0.4])

    registry.register_spectral_model("ranged_for_test")(lambda **kwargs: Ranged())
    stars = pd.DataFrame({"teff": [3800.0, 5000.0, 7000.0], "fe_h": [-2.5, 0.0, 0.5],
                          "logg": [1.0, 4.0, 4.5]})
    clipped = clip_to_spectral_model(stars, {"spectral_model": "ranged_for_test"})
    assert clipped["teff"].tolist() == [4000.0, 5000.0, 6500.0]
    assert clipped["fe_h"].tolist() == [-2.0, 0.0, 0.4]
    assert clipped["logg"].tolist() == [1.0, 4.0, 4.5]   # not a model label: untouched
    assert stars["teff"].tolist() == [3800.0, 5000.0, 7000.0]  # input not modified
    # the analytic model has no range: nothing changes
    same = clip_to_spectral_model(stars, {"spectral_model": "analytic"})
    pd.testing.assert_frame_equal(same, stars)
