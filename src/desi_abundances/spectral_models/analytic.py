"""The analytic spectral model, registered as ``analytic`` (``spectral_models.registry``):
labels -> continuum-normalised rest-frame spectra; the mock survey's default
(``mock_survey.spectral_model``).

The analytic model (:class:`AnalyticSpectralModel`) is a toy LTE photosphere: ~190 real
strong lines and band heads (``line_table``) whose strengths follow Boltzmann excitation,
Saha ionisation balance against an electron pressure that scales with gravity, Teff and
metallicity, an H- continuum opacity proportional to that pressure, an approximate curve of
growth (Doppler core with microturbulence, damping wings growing with pressure), hydrogen
lines with Teff-driven Stark wings, and molecular bands (CN, CH G band, C2, MgH, TiO, CaH)
with dissociation-energy temperature scaling and gravity terms for the hydride bands.

It responds to teff, logg, fe_h, vmic and to each [X/Fe] whose element has lines in the
table: C (CH, CN, C2), C I (ci_fe: atomic carbon lines), N (CN), O (O I lines, TiO), Na, Mg
(incl. MgH), Al, Si, K, Ca (incl. CaH), Ti (Ti I lines, TiO), Ti II (tiii_fe), V, Cr, Mn, Co,
Ni, Cu, Ce. Labels of elements WITHOUT lines in the table (P and S) carry no information: the
spectrum does not change with p_fe or s_fe. Other elements in the table (Ba, Sr, Eu, Sc,
Zn, Y, La, Nd, Li) scale with [Fe/H]. It is a caricature calibrated on a few solar
equivalent widths, good for testing a pipeline end to end, not for science.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.physics import SPEED_OF_LIGHT_KMS
from desi_abundances.spectral_models.line_table import LINES
from desi_abundances.spectral_models.registry import register


def log_uniform_grid(start: float, end: float, resolution: float) -> np.ndarray:
    """Wavelengths (Angstrom) from ``start`` to at least ``end`` with d ln(lambda) = 1/resolution."""
    n = int(np.ceil(np.log(end / start) * resolution)) + 1
    return start * np.exp(np.arange(n) / resolution)


# --- atomic data -------------------------------------------------------------------------
SOLAR_LOG_EPSILON: dict[str, float] = {
    "H": 12.00, "Li": 1.05, "C": 8.43, "N": 7.83, "O": 8.69, "Na": 6.24, "Mg": 7.60,
    "Al": 6.45, "Si": 7.51, "K": 5.03, "Ca": 6.34, "Sc": 3.15, "Ti": 4.95, "V": 3.93,
    "Cr": 5.64, "Mn": 5.43, "Fe": 7.50, "Co": 4.99, "Ni": 6.22, "Cu": 4.19, "Zn": 4.56,
    "Sr": 2.87, "Y": 2.21, "Ba": 2.18, "La": 1.10, "Ce": 1.58, "Nd": 1.42, "Eu": 0.52,
}
"""Solar photospheric abundances log eps (Asplund et al. 2009)."""

IONISATION_EV: dict[str, float] = {
    "H": 13.60, "Li": 5.39, "C": 11.26, "N": 14.53, "O": 13.62, "Na": 5.14, "Mg": 7.65,
    "Al": 5.99, "Si": 8.15, "K": 4.34, "Ca": 6.11, "Sc": 6.56, "Ti": 6.83, "V": 6.75,
    "Cr": 6.77, "Mn": 7.43, "Fe": 7.90, "Co": 7.88, "Ni": 7.64, "Cu": 7.73, "Zn": 9.39,
    "Sr": 5.69, "Y": 6.22, "Ba": 5.21, "La": 5.58, "Ce": 5.54, "Nd": 5.53, "Eu": 5.67,
}
"""First ionisation potentials (eV)."""

ATOMIC_MASS: dict[str, float] = {
    "H": 1.0, "Li": 6.9, "C": 12.0, "N": 14.0, "O": 16.0, "Na": 23.0, "Mg": 24.3, "Al": 27.0,
    "Si": 28.1, "K": 39.1, "Ca": 40.1, "Sc": 45.0, "Ti": 47.9, "V": 50.9, "Cr": 52.0,
    "Mn": 54.9, "Fe": 55.8, "Co": 58.9, "Ni": 58.7, "Cu": 63.5, "Zn": 65.4, "Sr": 87.6,
    "Y": 88.9, "Ba": 137.3, "La": 138.9, "Ce": 140.1, "Nd": 144.2, "Eu": 152.0,
}


def abundance_label(element: str, ion: str) -> str | None:
    """The [X/Fe] label (python name) that sets the abundance of a species, None for Fe and
    elements without a label (they follow [Fe/H])."""
    if element == "Ti" and ion == "II":
        return "tiii_fe"
    if element == "C" and ion == "I":
        return "ci_fe"
    label = f"{element.lower()}_fe"
    known = {"c_fe", "n_fe", "o_fe", "na_fe", "mg_fe", "al_fe", "si_fe", "p_fe", "s_fe",
             "k_fe", "ca_fe", "ti_fe", "v_fe", "cr_fe", "mn_fe", "co_fe", "ni_fe", "cu_fe",
             "ce_fe"}
    return label if label in known else None


# Molecular bands: head (vacuum A), direction the band degrades to, e-folding length (A),
# log10 peak optical depth in the Sun, effective dissociation energy (eV) for the Teff
# scaling, gravity exponent (per dex of log g), abundance weights {label-element: weight}.
MOLECULAR_BANDS: dict[float, dict[str, Any]] = {
    3884.1: dict(molecule="CN", degrade="blue", length=60.0, log_tau_sun=-1.4, d0=4.0,
                 g_exp=-0.15, weights={"C": 0.5, "N": 1.0}),
    4217.2: dict(molecule="CN", degrade="blue", length=40.0, log_tau_sun=-1.8, d0=4.0,
                 g_exp=-0.15, weights={"C": 0.5, "N": 1.0}),
    4301.2: dict(molecule="CH", degrade="blue", length=25.0, log_tau_sun=-0.4, d0=2.5,
                 g_exp=0.0, weights={"C": 1.0}, head_offset=13.0),
    4738.3: dict(molecule="C2", degrade="blue", length=40.0, log_tau_sun=-1.6, d0=4.0,
                 g_exp=0.0, weights={"C": 2.0}),
    4781.3: dict(molecule="MgH", degrade="blue", length=40.0, log_tau_sun=-1.4, d0=2.5,
                 g_exp=0.4, weights={"Mg": 1.0}),
    4956.0: dict(molecule="TiO", degrade="red", length=60.0, log_tau_sun=-3.9, d0=7.0,
                 g_exp=0.0, weights={"Ti": 1.0, "O": 0.5}),
    5166.6: dict(molecule="C2", degrade="blue", length=40.0, log_tau_sun=-1.4, d0=4.0,
                 g_exp=0.0, weights={"C": 2.0}),
    5168.4: dict(molecule="TiO", degrade="red", length=60.0, log_tau_sun=-3.8, d0=7.0,
                 g_exp=0.0, weights={"Ti": 1.0, "O": 0.5}),
    5212.5: dict(molecule="MgH", degrade="blue", length=80.0, log_tau_sun=-1.1, d0=2.5,
                 g_exp=0.4, weights={"Mg": 1.0}),
    5848.6: dict(molecule="TiO", degrade="red", length=70.0, log_tau_sun=-3.8, d0=7.0,
                 g_exp=0.0, weights={"Ti": 1.0, "O": 0.5}),
    6160.4: dict(molecule="TiO", degrade="red", length=70.0, log_tau_sun=-3.7, d0=7.0,
                 g_exp=0.0, weights={"Ti": 1.0, "O": 0.5}),
    6383.8: dict(molecule="CaH", degrade="red", length=50.0, log_tau_sun=-2.4, d0=3.5,
                 g_exp=0.5, weights={"Ca": 1.0}),
    6751.9: dict(molecule="CaH", degrade="red", length=150.0, log_tau_sun=-2.5, d0=3.5,
                 g_exp=0.5, weights={"Ca": 1.0}),
    7055.8: dict(molecule="TiO", degrade="red", length=90.0, log_tau_sun=-3.4, d0=7.0,
                 g_exp=0.0, weights={"Ti": 1.0, "O": 0.5}),
    7668.1: dict(molecule="TiO", degrade="red", length=90.0, log_tau_sun=-3.7, d0=7.0,
                 g_exp=0.0, weights={"Ti": 1.0, "O": 0.5}),
    7876.2: dict(molecule="CN", degrade="red", length=80.0, log_tau_sun=-2.6, d0=4.0,
                 g_exp=-0.15, weights={"C": 0.5, "N": 1.0}),
    8434.3: dict(molecule="TiO", degrade="red", length=90.0, log_tau_sun=-3.8, d0=7.0,
                 g_exp=0.0, weights={"Ti": 1.0, "O": 0.5}),
    8861.4: dict(molecule="TiO", degrade="red", length=90.0, log_tau_sun=-3.9, d0=7.0,
                 g_exp=0.0, weights={"Ti": 1.0, "O": 0.5}),
}

THETA_SUN = 5040.0 / 5772.0
LOGG_SUN = 4.44


def electron_pressure_log(teff: np.ndarray, logg: np.ndarray, fe_h: np.ndarray) -> np.ndarray:
    """log10 electron pressure (dyn cm^-2) of the line-forming layers: ~1.1 in the Sun,
    P_e ~ g^0.5, rising steeply with Teff (hydrogen ionisation) and with metallicity
    (metals supply the electrons in cool stars)."""
    return 1.1 + 0.5 * (logg - LOGG_SUN) + 0.3 * fe_h + 6.0 * np.log10(teff / 5772.0)


def ionised_fraction(element: str, teff: np.ndarray, log_pe: np.ndarray) -> np.ndarray:
    """N_II / N (first ionisation only) from the Saha equation, partition functions ~ 1."""
    theta = 5040.0 / teff
    log_ratio = (2.5 * np.log10(teff) - theta * IONISATION_EV[element] - 0.1762
                 + np.log10(2.0) - log_pe)
    ratio = 10.0 ** np.clip(log_ratio, -30, 30)
    return ratio / (1.0 + ratio)


def curve_of_growth(tau0: np.ndarray, b_kms: np.ndarray,
                    damping_kms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equivalent width (km/s) and the damping share of it (0..1) from the line-centre
    optical depth ``tau0``, Doppler parameter ``b`` and Lorentz HWHM ``damping`` (km/s):
    the approximation of Draine (2011, eq. 9.27)."""
    weak = np.sqrt(np.pi) * b_kms * tau0 / (1.0 + tau0 / (2.0 * np.sqrt(2.0)))
    doppler2 = 4.0 * b_kms**2 * np.log(np.maximum(tau0, 1.254) / np.log(2.0))
    damping2 = 4.0 * np.sqrt(np.pi) * b_kms * damping_kms * np.maximum(tau0 - 1.254, 0.0)
    strong = np.sqrt(doppler2 + damping2)
    width = np.where(tau0 < 1.254, weak, strong)
    share = np.where(tau0 < 1.254, 0.0, damping2 / np.maximum(doppler2 + damping2, 1e-30))
    return width, share


class AnalyticSpectralModel:
    """Toy LTE spectra from real strong lines (see the module docstring).

    Args:
        wavelength_min, wavelength_max: rest-frame vacuum range (Angstrom).
        grid_resolution: 1 / d ln(lambda) of the grid (30,000: 10 km/s pixels).
        resolving_power: native R of the output (Gaussian); DESI's R <= 5,500 is added by
            the instrument. 10,000 keeps lines resolved on the grid.
        line_strength_offset: log10 offset of every atomic line's optical depth (calibrated
            so that solar Fe I lines have roughly solar equivalent widths).
        damping_kms: Lorentz HWHM (km/s) of metal lines in the Sun; scales as g^(1/3).
    """

    def __init__(self, wavelength_min: float = 3550.0, wavelength_max: float = 9900.0,
                 grid_resolution: float = 30_000.0, resolving_power: float = 10_000.0,
                 line_strength_offset: float = 0.5, damping_kms: float = 0.5) -> None:
        self.wavelength = log_uniform_grid(wavelength_min, wavelength_max, grid_resolution)
        self.grid_resolution = float(grid_resolution)
        self.resolving_power = float(resolving_power)
        self.line_strength_offset = float(line_strength_offset)
        self.damping_kms = float(damping_kms)
        lo, hi = self.wavelength[0], self.wavelength[-1]
        self.atomic_lines = [row for row in LINES
                             if row[3] in ("I", "II") and row[2] != "H" and lo < row[0] < hi]
        self.hydrogen_lines = [row for row in LINES if row[2] == "H" and lo < row[0] < hi]
        self.bands = {w: spec for w, spec in MOLECULAR_BANDS.items() if lo < w < hi}

    # -- helpers --------------------------------------------------------------------------
    def _index(self, wavelength: float) -> int:
        return int(np.clip(np.searchsorted(self.wavelength, wavelength), 0, self.wavelength.size))

    def _window(self, centre: float, half_width_kms: float) -> tuple[int, int]:
        half = half_width_kms / SPEED_OF_LIGHT_KMS * centre
        return self._index(centre - half), self._index(centre + half)

    @staticmethod
    def _x_h(labels: pd.DataFrame, element: str, ion: str) -> np.ndarray:
        """[X/H] (dex) of the species' element."""
        fe_h = labels["fe_h"].to_numpy(float)
        label = abundance_label(element, ion)
        if label is None or label not in labels:
            return fe_h
        return fe_h + labels[label].to_numpy(float)

    # -- model ----------------------------------------------------------------------------
    def optical_depth(self, labels: pd.DataFrame) -> np.ndarray:
        """(n, n_wave) float32 total absorption 'optical depth'; flux = exp(-tau)."""
        missing = {"teff", "logg", "fe_h", "vmic"} - set(labels.columns)
        if missing:
            raise ValueError(f"labels lack column(s) {sorted(missing)}")
        n = len(labels)
        tau = np.zeros((n, self.wavelength.size), dtype=np.float32)
        teff = labels["teff"].to_numpy(float)
        logg = labels["logg"].to_numpy(float)
        fe_h = labels["fe_h"].to_numpy(float)
        vmic = labels["vmic"].to_numpy(float)
        theta = 5040.0 / teff
        log_pe = electron_pressure_log(teff, logg, fe_h)
        sigma_native_kms = SPEED_OF_LIGHT_KMS / self.resolving_power / 2.3548
        damping = self.damping_kms * 10 ** ((logg - LOGG_SUN) / 3.0) * (teff / 5772.0) ** 0.3

        fractions: dict[tuple[str, str], np.ndarray] = {}
        for centre, _species, element, ion, chi, log_gf in self.atomic_lines:
            key = (element, ion)
            if key not in fractions:
                f_ion = ionised_fraction(element, teff, log_pe)
                fractions[key] = np.log10(np.maximum(f_ion if ion == "II" else 1.0 - f_ion, 1e-30))
            b = np.sqrt(1.66 * (teff / 5772.0) * 56.0 / ATOMIC_MASS[element] + vmic**2)
            log_tau0 = (self.line_strength_offset + log_gf + SOLAR_LOG_EPSILON[element] - 7.5
                        + 7.5 + self._x_h(labels, element, ion) - theta * chi + fractions[key]
                        - log_pe + np.log10(centre / 5000.0) - np.log10(b / 1.5))
            tau0 = 10.0 ** np.clip(log_tau0, -10, 12)
            width_kms, share = curve_of_growth(tau0, b, damping)
            if np.all(width_kms < 0.05):
                continue
            gamma_kms = np.maximum(damping, np.sqrt(tau0 * damping * b / np.sqrt(np.pi)))
            sigma_kms = np.sqrt(sigma_native_kms**2 + b**2 / 2.0)
            half_kms = float(np.clip(np.max(np.maximum(6 * sigma_kms, 12 * gamma_kms * (share > 0.05))),
                                     6 * sigma_native_kms, 4000.0))
            i0, i1 = self._window(centre, half_kms)
            if i1 <= i0:
                continue
            dv = (np.log(self.wavelength[i0:i1] / centre) * SPEED_OF_LIGHT_KMS
                  ).astype(np.float32)[None, :]
            sig = sigma_kms.astype(np.float32)[:, None]
            weight_g = ((1.0 - share) * width_kms / (np.sqrt(2 * np.pi) * sigma_kms)
                        ).astype(np.float32)[:, None]
            tau[:, i0:i1] += weight_g * np.exp(np.float32(-0.5) * (dv / sig) ** 2)
            if np.any(share > 1e-3):
                gam = gamma_kms.astype(np.float32)[:, None]
                weight_l = (share * width_kms / np.pi).astype(np.float32)[:, None]
                tau[:, i0:i1] += weight_l * gam / (dv**2 + gam**2)

        self._add_hydrogen(tau, theta, logg, log_pe)
        self._add_bands(tau, labels, theta, logg)
        return tau

    def _add_hydrogen(self, tau: np.ndarray, theta: np.ndarray, logg: np.ndarray,
                      log_pe: np.ndarray) -> None:
        """Balmer and Paschen lines: strength from the n=2/n=3 Boltzmann factor (damped: the
        H- continuum falls in step), Stark wings widening with electron pressure."""
        for centre, _species, _element, _ion, chi, log_gf in self.hydrogen_lines:
            paschen = chi > 11.0
            log_s = (0.1 - (0.6 if paschen else 0.0) + log_gf
                     - 0.35 * chi * (theta - THETA_SUN) * (2.0 if paschen else 1.0))
            strength = 10.0 ** log_s
            width_a = 0.8 * (centre / 6563.0) * 10 ** (0.25 * (log_pe - 1.1))
            i0, i1 = self._window(centre, 60.0 / centre * SPEED_OF_LIGHT_KMS if not paschen
                                  else 25.0 / centre * SPEED_OF_LIGHT_KMS)
            dl = (self.wavelength[i0:i1] - centre)[None, :]
            profile = (1.0 + (dl / width_a[:, None]) ** 2) ** -1.25
            tau[:, i0:i1] += (strength[:, None] * profile).astype(np.float32)

    def _add_bands(self, tau: np.ndarray, labels: pd.DataFrame, theta: np.ndarray,
                   logg: np.ndarray) -> None:
        """Molecular bands: a sharp head, exponential fall-off towards the degraded side."""
        for head, spec in self.bands.items():
            head = head + spec.get("head_offset", 0.0)
            log_tau = (spec["log_tau_sun"] + spec["d0"] * (theta - THETA_SUN)
                       + spec["g_exp"] * (logg - LOGG_SUN))
            for element, weight in spec["weights"].items():
                log_tau = log_tau + weight * self._x_h(labels, element, "mol")
            peak = 10.0 ** np.clip(log_tau, -10, 3)
            if np.all(peak < 1e-4):
                continue
            length = spec["length"]
            if spec["degrade"] == "blue":
                i0, i1 = self._index(head - 5 * length), self._index(head + 2.0)
                distance = head - self.wavelength[i0:i1]
            else:
                i0, i1 = self._index(head - 2.0), self._index(head + 5 * length)
                distance = self.wavelength[i0:i1] - head
            shape = np.where(distance >= 0, np.exp(-np.maximum(distance, 0) / length),
                             np.exp(-((distance / 0.8) ** 2)))
            # ragged rotational structure so the band is not a smooth step
            shape = shape * (0.75 + 0.25 * np.cos(2 * np.pi * distance / 3.1) ** 2)
            tau[:, i0:i1] += (peak[:, None] * shape[None, :]).astype(np.float32)

    def normalised_flux(self, labels: pd.DataFrame) -> np.ndarray:
        """(n, n_wave) float32 continuum-normalised rest-frame flux at native resolution."""
        tau = self.optical_depth(labels)
        np.negative(tau, out=tau)
        np.exp(tau, out=tau)
        return tau


def equivalent_width(wavelength: np.ndarray, flux: np.ndarray, centre: float,
                     half_width: float) -> np.ndarray:
    """Equivalent width (Angstrom) of normalised ``flux`` within ``centre +- half_width``."""
    sel = np.abs(wavelength - centre) <= half_width
    return np.trapezoid(1.0 - np.atleast_2d(flux)[:, sel], wavelength[sel], axis=1)


register("analytic", AnalyticSpectralModel)
