"""A Milky-Way-like stellar population (the mock survey's stars and the spectral library's
label plan): a mix of thin disk, thick disk and halo; dwarfs, subgiants and giants along an
analytic, metallicity-dependent locus; element abundance trends calibrated on real APOGEE
labels. Pure numpy/pandas, seeded by the caller.

Units: teff in K, logg in dex (cgs), fe_h / alpha_m / <x>_fe in dex, vmic in km/s.

Calibration (provenance)
------------------------
``ABUNDANCE_TRENDS`` and ``RGB_LOCUS`` were fitted (least squares; scatter = 1.4826 MAD of the
residuals) on the 9,618 REAL APOGEE DR12 giants of ``examples_apogee_dr12_labels.csv``
(annayqho/TheCannon, Ho et al. 2017; kept read-only in ``shared/data/apogee_dr12_labels``,
not in git), with [X/Fe] = [X/H] - FE_H and alpha_m = PARAM_ALPHA_M:
``[X/Fe] = a + b [Fe/H] + c [alpha/M] + d (min(logg, 3.8) - 2.5) + N(0, s)``.
That file has no dwarfs and few metal-poor stars: dwarfs use the trends with the logg term
frozen at 3.8 (no first dredge-up), and the halo extrapolates the [Fe/H] and [alpha/M]
terms. Elements absent from DR12 (C I, P, Ti II, Cr, Co, Cu, Ce) use rough literature-like
priors, marked ``prior`` below; they are not a measurement.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.stellar.labels import ELEMENT_LABELS, STELLAR_LABELS, microturbulence

# (a, b, c, d, scatter): [X/Fe] = a + b*[Fe/H] + c*[alpha/M] + d*(min(logg,3.8)-2.5) + N(0, s)
ABUNDANCE_TRENDS: dict[str, tuple[float, float, float, float, float]] = {
    # fitted on APOGEE DR12 (see module docstring)
    "c_fe": (-0.111, 0.059, 0.949, 0.041, 0.076),
    "n_fe": (0.171, 0.157, -0.330, -0.149, 0.087),
    "o_fe": (0.001, -0.076, 0.965, -0.022, 0.033),
    "na_fe": (-0.049, 0.094, 0.292, 0.042, 0.097),
    "mg_fe": (-0.067, -0.008, 1.085, 0.007, 0.039),
    "al_fe": (0.046, 0.158, 1.339, 0.001, 0.069),
    "si_fe": (0.136, -0.008, 0.765, -0.031, 0.051),
    "s_fe": (0.070, -0.099, 0.880, -0.017, 0.055),
    "k_fe": (-0.184, -0.047, 0.765, 0.003, 0.056),
    "ca_fe": (-0.099, -0.097, 0.630, -0.010, 0.038),
    "ti_fe": (-0.074, 0.141, 0.931, -0.011, 0.061),
    "v_fe": (-0.135, 0.243, -0.440, -0.003, 0.191),
    "mn_fe": (0.082, 0.155, -0.315, 0.019, 0.044),
    "ni_fe": (-0.045, 0.048, 0.210, 0.013, 0.040),
    # prior (not in DR12): rough literature-like trends
    "ci_fe": (-0.111, 0.059, 0.949, 0.041, 0.100),  # atomic C follows C
    "p_fe": (0.050, -0.100, 0.500, 0.000, 0.200),
    "tiii_fe": (-0.024, 0.141, 0.931, -0.011, 0.100),  # Ti II follows Ti I, offset +0.05
    "cr_fe": (0.000, 0.000, -0.050, 0.000, 0.050),
    "co_fe": (0.000, 0.000, 0.300, 0.000, 0.120),
    "cu_fe": (-0.050, 0.150, 0.000, 0.000, 0.150),
    "ce_fe": (0.050, -0.100, -0.300, 0.000, 0.150),
}

RGB_LOCUS = (4683.1, 452.4, -147.5, 117.2)
"""Red-giant branch: teff = a + b (logg - 2.5) + c [Fe/H] + N(0, s), fitted on APOGEE DR12
giants outside the red clump (K, dex)."""


@dataclass
class Component:
    """One Galactic population: metallicity distribution, alpha sequence, kinematics."""

    fraction: float
    feh_mean: float
    feh_sigma: float
    feh_range: tuple[float, float]
    turnoff_teff: float
    """Turn-off temperature at [Fe/H] = 0 (K); metal-poor turn-offs are hotter."""
    sigma_vrad_kms: float
    mean_vrad_kms: float
    sigma_vtan_kms: float
    mass_msun: float
    low_alpha_fraction: float = 0.0
    """Fraction of the component on its low-alpha (accreted) sequence; used by the halo."""


DEFAULT_COMPONENTS: dict[str, Component] = {
    "thin_disk": Component(0.55, -0.10, 0.20, (-1.2, 0.5), 6300.0, 30.0, 0.0, 40.0, 1.1),
    "thick_disk": Component(0.30, -0.55, 0.25, (-2.0, 0.3), 6000.0, 55.0, -30.0, 80.0, 0.9),
    "halo": Component(0.15, -1.45, 0.45, (-3.0, -0.3), 6050.0, 150.0, 0.0, 200.0, 0.8, 0.5),
}

DEFAULT_STAGES: dict[str, float] = {"dwarf": 0.48, "subgiant": 0.17, "giant": 0.27, "clump": 0.08}
"""Fractions of evolutionary stages in a magnitude-limited survey like DESI MWS."""


@dataclass
class PopulationConfig:
    """Parameters of the population (``mock_survey.population`` in the parameter file)."""

    components: dict[str, Component] = field(default_factory=lambda: dict(DEFAULT_COMPONENTS))
    stages: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STAGES))

    @classmethod
    def from_dict(cls, config: dict[str, Any] | None) -> PopulationConfig:
        """Build from parameters: ``{components: {name: {fraction: ..}}, stages: {..}}``;
        missing entries keep their defaults."""
        config = config or {}
        components = {}
        for name, default in DEFAULT_COMPONENTS.items():
            overrides = (config.get("components") or {}).get(name) or {}
            values = {**default.__dict__, **overrides}
            values["feh_range"] = tuple(values["feh_range"])
            components[name] = Component(**values)
        stages = {**DEFAULT_STAGES, **(config.get("stages") or {})}
        return cls(components=components, stages=stages)


def _normalised(weights: dict[str, float]) -> tuple[list[str], np.ndarray]:
    names = list(weights)
    values = np.array([weights[n] for n in names], dtype=float)
    if np.any(values < 0) or values.sum() <= 0:
        raise ValueError(f"fractions must be non-negative with a positive sum, got {weights}")
    return names, values / values.sum()


def alpha_sequence(component: str, fe_h: np.ndarray, rng: np.random.Generator,
                   low_alpha: np.ndarray | None = None) -> np.ndarray:
    """[alpha/M] (dex) of each star: low-alpha thin disk, high-alpha thick disk with its
    knee near [Fe/H] = -0.7, and a halo of two sequences (Nissen & Schuster 2010): a
    high-alpha plateau (0.32 dex, slowly falling) and, for the stars where ``low_alpha`` is
    True, an accreted low-alpha sequence whose knee lies near [Fe/H] = -1.6 (0.30 dex there,
    0.15 at -1.0). Below [Fe/H] ~ -1.6 the two merge."""
    fe_h = np.asarray(fe_h, dtype=float)
    if component == "thin_disk":
        mean = np.clip(-0.13 * fe_h, -0.05, 0.15)
        sigma = 0.025
    elif component == "thick_disk":
        mean = np.where(fe_h < -0.7, 0.30, 0.30 - 0.25 * (fe_h + 0.7) / 0.7)
        sigma = 0.03
    elif component == "halo":
        low = np.zeros(fe_h.size, dtype=bool) if low_alpha is None else np.asarray(low_alpha, bool)
        high_mean = 0.32 - 0.05 * np.clip(fe_h + 1.5, 0.0, 1.2)
        low_mean = 0.30 - 0.25 * np.clip(fe_h + 1.6, 0.0, 1.3)
        mean = np.where(low, low_mean, high_mean)
        sigma = 0.03
    else:
        raise ValueError(f"unknown population component {component!r}")
    return mean + rng.normal(0.0, sigma, fe_h.size)


def truncated_normal(mean: float, sigma: float, low: float, high: float, n: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of N(mean, sigma) restricted to [low, high] (resampling)."""
    out = rng.normal(mean, sigma, n)
    bad = (out < low) | (out > high)
    while bad.any():
        out[bad] = rng.normal(mean, sigma, bad.sum())
        bad = (out < low) | (out > high)
    return out


def rgb_teff(logg: np.ndarray, fe_h: np.ndarray) -> np.ndarray:
    """Mean red-giant-branch Teff (K) at log g and [Fe/H] (APOGEE DR12 fit)."""
    a, b, c, _ = RGB_LOCUS
    return a + b * (np.asarray(logg) - 2.5) + c * np.asarray(fe_h)


def turnoff_teff(component: Component, fe_h: np.ndarray) -> np.ndarray:
    """Turn-off Teff (K): metal-poor turn-offs are hotter (-300 K per dex)."""
    return component.turnoff_teff - 300.0 * np.clip(np.asarray(fe_h), -2.5, 0.5)


def dwarf_logg(teff: np.ndarray, fe_h: np.ndarray) -> np.ndarray:
    """Main-sequence log g (dex): 4.75 at 4000 K falling to 4.3 near 6300 K; metal-poor
    dwarfs are smaller at fixed Teff (higher log g)."""
    return 4.75 - 0.45 * (np.asarray(teff) - 4000.0) / 2300.0 - 0.08 * np.asarray(fe_h)


def locus(stage: np.ndarray, component: Component, fe_h: np.ndarray,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Teff (K) and log g (dex) of stars of one component along the analytic locus."""
    n = fe_h.size
    teff = np.empty(n)
    logg = np.empty(n)
    t_to = turnoff_teff(component, fe_h)

    dwarf = stage == "dwarf"
    teff[dwarf] = np.maximum(t_to[dwarf] - np.abs(rng.normal(0.0, 900.0, dwarf.sum())), 3500.0)
    logg[dwarf] = dwarf_logg(teff[dwarf], fe_h[dwarf]) + rng.normal(0.0, 0.05, dwarf.sum())

    sub = stage == "subgiant"
    logg_sub = rng.uniform(3.5, 4.15, sub.sum())
    t_base = rgb_teff(np.full(sub.sum(), 3.5), fe_h[sub]) + 150.0
    frac = (4.15 - logg_sub) / 0.65
    teff[sub] = t_to[sub] - frac * (t_to[sub] - t_base) + rng.normal(0.0, 80.0, sub.sum())
    logg[sub] = logg_sub

    giant = stage == "giant"
    logg_g = 3.5 - 3.0 * rng.beta(1.4, 2.2, giant.sum())
    logg[giant] = logg_g
    teff[giant] = rgb_teff(logg_g, fe_h[giant]) + rng.normal(0.0, 0.7 * RGB_LOCUS[3], giant.sum())

    clump = stage == "clump"
    metal_rich = fe_h > -1.0
    rc = clump & metal_rich
    logg[rc] = rng.normal(2.45, 0.08, rc.sum())
    teff[rc] = 4700.0 - 250.0 * fe_h[rc] + rng.normal(0.0, 60.0, rc.sum())
    hb = clump & ~metal_rich  # red horizontal branch of metal-poor populations
    logg[hb] = rng.normal(2.5, 0.15, hb.sum())
    teff[hb] = rng.uniform(5000.0, 6200.0, hb.sum())
    return np.clip(teff, 3500.0, 7200.0), np.clip(logg, 0.0, 5.0)


def abundances(fe_h: np.ndarray, alpha_m: np.ndarray, logg: np.ndarray,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every [X/Fe] (dex) from :data:`ABUNDANCE_TRENDS` plus Gaussian scatter."""
    logg_term = np.minimum(logg, 3.8) - 2.5
    result = {}
    for label in ELEMENT_LABELS:
        a, b, c, d, s = ABUNDANCE_TRENDS[label]
        value = a + b * fe_h + c * alpha_m + d * logg_term + rng.normal(0.0, s, fe_h.size)
        result[label] = np.clip(value, -1.0, 1.5)
    return result


def sample_population(n: int, rng: np.random.Generator,
                      config: PopulationConfig | dict | None = None) -> pd.DataFrame:
    """``n`` stars of the mock Galaxy with their labels and bookkeeping.

    Columns: component (thin_disk/thick_disk/halo), alpha_sequence (high/low: the thin disk
    is low, the thick disk high, each halo star on one of the halo's two sequences), stage
    (dwarf/subgiant/giant/clump), teff (K), logg (dex), fe_h, alpha_m (dex), vmic (km/s),
    every ``<x>_fe`` (dex), mass_msun. Row order is random.
    """
    if not isinstance(config, PopulationConfig):
        config = PopulationConfig.from_dict(config)
    comp_names, comp_p = _normalised({k: c.fraction for k, c in config.components.items()})
    stage_names, stage_p = _normalised(config.stages)
    component = np.array(comp_names, dtype=object)[rng.choice(len(comp_names), n, p=comp_p)]
    stage = np.array(stage_names, dtype=object)[rng.choice(len(stage_names), n, p=stage_p)]
    fe_h = np.empty(n)
    alpha_m = np.empty(n)
    teff = np.empty(n)
    logg = np.empty(n)
    mass = np.empty(n)
    sequence = np.where(component == "thin_disk", "low", "high").astype(object)
    for name in comp_names:
        comp = config.components[name]
        sel = component == name
        k = int(sel.sum())
        if k == 0:
            continue
        fe_h[sel] = truncated_normal(comp.feh_mean, comp.feh_sigma, *comp.feh_range, k, rng)
        low = rng.random(k) < comp.low_alpha_fraction if comp.low_alpha_fraction > 0 else None
        alpha_m[sel] = alpha_sequence(name, fe_h[sel], rng, low)
        if low is not None:
            sequence[sel] = np.where(low, "low", "high")
        teff[sel], logg[sel] = locus(stage[sel], comp, fe_h[sel], rng)
        mass[sel] = comp.mass_msun
    frame = pd.DataFrame({
        "component": component,
        "alpha_sequence": sequence,
        "stage": stage,
        "teff": teff,
        "logg": logg,
        "fe_h": fe_h,
        "alpha_m": alpha_m,
        "vmic": microturbulence(teff, logg, rng),
        **abundances(fe_h, alpha_m, logg, rng),
        "mass_msun": mass,
    })
    return frame


def sample_stellar_labels(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` label vectors drawn from the mock's Galactic population (default parameters).

    Columns: teff (K), logg (dex), fe_h (dex), vmic (km/s) and each ``<x>_fe`` (dex) of
    ``constants.APOGEE_DR17_ELEMENTS`` in python names (c_fe, ci_fe, ..., ce_fe).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return sample_population(n, rng)[list(STELLAR_LABELS)].reset_index(drop=True)
