"""Air <-> vacuum wavelengths (Angstrom) for optical lines (dry air, 15 C, 1 atm).

vacuum -> air: the IAU standard of Morton (2000, ApJS 130, 403, eq. 3), from Birch & Downs
(1994); air -> vacuum: N. Piskunov's inversion of it (VALD3 documentation, "Air-to-vacuum
conversion"). Round trip better than 1e-6 A over 3000-10000 A. Known values (NIST ASD):
Ca II K 3933.663 A air = 3934.777 A vacuum; H alpha 6562.79 A air = 6564.60 A vacuum.
"""
from __future__ import annotations

import numpy as np


def air_to_vacuum(wavelength_air: np.ndarray) -> np.ndarray:
    """Vacuum wavelength (Angstrom) of air wavelengths (Angstrom): lambda_air x n(lambda)."""
    air = np.asarray(wavelength_air, dtype=float)
    s2 = (1e4 / air) ** 2
    n = (1 + 8.336624212083e-5 + 2.408926869968e-2 / (1.301065924522e2 - s2)
         + 1.599740894897e-4 / (3.892568793293e1 - s2))
    return air * n


def vacuum_to_air(wavelength_vacuum: np.ndarray) -> np.ndarray:
    """Air wavelength (Angstrom) of vacuum wavelengths (Angstrom): lambda_vac / n(lambda)."""
    vac = np.asarray(wavelength_vacuum, dtype=float)
    s2 = (1e4 / vac) ** 2
    n = 1 + 8.34254e-5 + 2.406147e-2 / (130 - s2) + 1.5998e-4 / (38.9 - s2)
    return vac / n
