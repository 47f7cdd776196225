"""Galactic population: fractions, locus, abundance trends, determinism."""
import numpy as np
import pytest

from desi_abundances.stellar.labels import ELEMENT_LABELS, STELLAR_LABELS
from desi_abundances.stellar.population import (
    dwarf_logg,
    rgb_teff,
    sample_population,
    sample_stellar_labels,
)


@pytest.fixture(scope="module")
def population():
    return sample_population(6000, np.random.default_rng(3))


def test_sample_stellar_labels_columns_and_seed() -> None:
    first = sample_stellar_labels(50, np.random.default_rng(1))
    again = sample_stellar_labels(50, np.random.default_rng(1))
    assert list(first.columns) == list(STELLAR_LABELS)
    assert "p_fe" in first and "tiii_fe" in first and len(ELEMENT_LABELS) == 21
    assert first.equals(again)
    assert np.isfinite(first.to_numpy()).all()


def test_component_fractions_and_metallicities(population) -> None:
    fractions = population["component"].value_counts(normalize=True)
    assert fractions["thin_disk"] == pytest.approx(0.55, abs=0.03)
    assert fractions["thick_disk"] == pytest.approx(0.30, abs=0.03)
    assert fractions["halo"] == pytest.approx(0.15, abs=0.02)
    feh = population.groupby("component")["fe_h"].median()
    assert feh["halo"] < feh["thick_disk"] < feh["thin_disk"]


def test_locus_giants_and_dwarfs(population) -> None:
    giants = population[population["stage"] == "giant"]
    residual = giants["teff"] - rgb_teff(giants["logg"], giants["fe_h"])
    assert abs(residual.median()) < 30 and residual.std() < 150
    dwarfs = population[population["stage"] == "dwarf"]
    assert (dwarfs["logg"] > 4.0).all()
    assert np.corrcoef(dwarfs["teff"], dwarfs["logg"])[0, 1] < -0.5
    # metal-poor giants are hotter at fixed gravity
    assert rgb_teff(2.0, -2.0) > rgb_teff(2.0, 0.0)
    assert dwarf_logg(4000.0, 0.0) > dwarf_logg(6000.0, 0.0)


def test_alpha_element_trends(population) -> None:
    bin_ = population[(population["fe_h"] > -0.9) & (population["fe_h"] < -0.5)]
    by_comp = bin_.groupby("component")[["mg_fe", "alpha_m"]].median()
    assert by_comp.loc["thick_disk", "mg_fe"] > by_comp.loc["thin_disk", "mg_fe"] + 0.1
    # [Mg/Fe] falls with [Fe/H] overall; Mn rises
    assert np.polyfit(population["fe_h"], population["mg_fe"], 1)[0] < -0.05
    assert np.polyfit(population["fe_h"], population["mn_fe"], 1)[0] > 0.05


def test_halo_has_two_alpha_sequences(population) -> None:
    """The halo's accreted low-alpha and in-situ high-alpha sequences (Nissen & Schuster
    2010) part above [Fe/H] ~ -1.2 and merge below -1.6; every star names its sequence."""
    assert set(population["alpha_sequence"]) == {"high", "low"}
    assert (population.loc[population["component"] == "thin_disk", "alpha_sequence"] == "low").all()
    halo = population[population["component"] == "halo"]
    assert halo["alpha_sequence"].value_counts(normalize=True)["low"] == pytest.approx(0.5, abs=0.05)
    rich = halo[(halo["fe_h"] > -1.2) & (halo["fe_h"] < -0.6)].groupby("alpha_sequence")["mg_fe"].median()
    assert rich["high"] - rich["low"] > 0.12
    poor = halo[halo["fe_h"] < -1.8].groupby("alpha_sequence")["mg_fe"].median()
    assert abs(poor["high"] - poor["low"]) < 0.05
