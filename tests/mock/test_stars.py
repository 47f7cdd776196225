"""The mock survey's stars (mock/stars.py): the spectral-model registry's label range, the
seed, the APOGEE epoch."""
import numpy as np
import pandas as pd

from desi_abundances import spectral_models
from desi_abundances.mock import survey
from desi_abundances.mock.stars import clip_to_spectral_model


def test_star_labels_are_clipped_to_the_spectral_models_range():
    class Ranged:
        label_names = ["teff", "fe_h"]
        label_min = np.array([4000.0, -2.0])
        label_max = np.array([6500.0, 0.4])

    spectral_models.register("ranged_for_test", lambda **kwargs: Ranged())
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


def test_same_seed_same_survey(tiny_params) -> None:
    first = survey.simulate_stars(tiny_params)
    again = survey.simulate_stars(tiny_params)
    pd.testing.assert_frame_equal(first, again)
    other = survey.simulate_stars({**tiny_params, "seed": tiny_params["seed"] + 1})
    assert not np.allclose(first["teff"], other["teff"])


def test_apogee_positions_are_at_epoch_2000(tiny_params) -> None:
    stars = survey.simulate_stars({**tiny_params, "apogee_position_error_arcsec": 0.0})
    offset = np.hypot((stars["ra_desi"] - stars["ra_2000"]) * np.cos(np.radians(stars["dec_2000"])),
                      stars["dec_desi"] - stars["dec_2000"]) * 3600
    expected = np.hypot(stars["pmra"], stars["pmdec"]) * 15.5 / 1000
    np.testing.assert_allclose(offset, expected, rtol=1e-3, atol=1e-4)
    assert offset.max() < 1.1
