"""DESI's wavelength grids and flux unit (healpix coadds; vacuum Angstrom)."""
from __future__ import annotations

import numpy as np

ARMS: tuple[str, ...] = ("B", "R", "Z")
WAVELENGTH_STEP_ANGSTROM = 0.8
ARM_WAVELENGTH_RANGE_ANGSTROM: dict[str, tuple[float, float]] = {
    "B": (3600.0, 5800.0),
    "R": (5760.0, 7620.0),
    "Z": (7520.0, 9824.0),
}
BRZ_WAVELENGTH_RANGE_ANGSTROM = (3600.0, 9824.0)
RESOLUTION_NDIAG = 11
"""Number of diagonals in DESI's band-diagonal resolution matrix."""

FLUX_UNIT = "10**-17 erg/(s cm2 Angstrom)"
"""BUNIT of DESI FLUX images."""


def linear_grid(start: float, end: float, step: float = WAVELENGTH_STEP_ANGSTROM) -> np.ndarray:
    """Inclusive linear wavelength grid in Angstrom (float64)."""
    n_pixels = int(round((end - start) / step)) + 1
    return start + step * np.arange(n_pixels, dtype=np.float64)


def arm_wavelength(arm: str) -> np.ndarray:
    """DESI's wavelength grid of one arm (B: 2751, R: 2326, Z: 2881 pixels), Angstrom."""
    return linear_grid(*ARM_WAVELENGTH_RANGE_ANGSTROM[arm])


def brz_wavelength() -> np.ndarray:
    """The combined B+R+Z grid, 3600-9824 Angstrom in 0.8 Angstrom steps (7781 pixels)."""
    return linear_grid(*BRZ_WAVELENGTH_RANGE_ANGSTROM)
