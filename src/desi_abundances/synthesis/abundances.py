"""Abundance scale: the project's labels ([Fe/H], [X/Fe]) to absolute abundances A(X).

A(X) = log10(N_X / N_H) + 12. The solar scale is Grevesse, Asplund & Sauval (2007, Space Sci.
Rev. 130, 105), the table Turbospectrum v20 uses internally (``makeabund.f``,
``sunabund_2007``) and the scale of APOGEE DR17's ASPCAP, so [X/Fe] means the same thing in
the labels, in the synthesis and in the APOGEE training labels:

    A(Fe) = A_sun(Fe) + [Fe/H]
    A(X)  = A_sun(X)  + [Fe/H] + [X/Fe]
"""
from __future__ import annotations

import math
from collections.abc import Mapping

SOLAR_SCALE_NAME = "Grevesse, Asplund & Sauval 2007 (Turbospectrum v20 makeabund.f sunabund_2007)"

# A_sun(X) for Z = 1..92, copied from Turbospectrum v20 makeabund.f (sunabund_2007);
# -99 marks elements without a solar value.
_SOLAR_2007 = (
    12.00, 10.93, 1.05, 1.38, 2.70, 8.39, 7.78, 8.66, 4.56,
    7.84, 6.17, 7.53, 6.37, 7.51, 5.36, 7.14, 5.50, 6.18,
    5.08, 6.31, 3.17, 4.90, 4.00, 5.64, 5.39, 7.45, 4.92,
    6.23, 4.21, 4.60, 2.88, 3.58, 2.29, 3.33, 2.56, 3.25,
    2.60, 2.92, 2.21, 2.58, 1.42, 1.92, -99.0, 1.84, 1.12,
    1.66, 0.94, 1.77, 1.60, 2.00, 1.00, 2.19, 1.51, 2.24,
    1.07, 2.17, 1.13, 1.70, 0.58, 1.45, -99.0, 1.00, 0.52,
    1.11, 0.28, 1.14, 0.51, 0.93, 0.00, 1.08, 0.06, 0.88,
    -0.17, 1.11, 0.23, 1.25, 1.38, 1.64, 1.01, 1.13, 0.90,
    2.00, 0.65, -99.0, -99.0, -99.0, -99.0, -99.0, -99.0, 0.06,
    -99.0, -0.52,
)
SOLAR_ABUNDANCES: dict[int, float] = {z: a for z, a in enumerate(_SOLAR_2007, start=1) if a > -90}
"""A_sun(X) by atomic number (dex, A(H) = 12)."""

IRON = 26

LABEL_ATOMIC_NUMBER: dict[str, int] = {
    "c_fe": 6, "ci_fe": 6, "n_fe": 7, "o_fe": 8, "na_fe": 11, "mg_fe": 12, "al_fe": 13,
    "si_fe": 14, "p_fe": 15, "s_fe": 16, "k_fe": 19, "ca_fe": 20, "ti_fe": 22, "tiii_fe": 22,
    "v_fe": 23, "cr_fe": 24, "mn_fe": 25, "co_fe": 27, "ni_fe": 28, "cu_fe": 29, "ce_fe": 58,
}
"""Atomic number of each APOGEE DR17 abundance label (python names)."""

SECONDARY_LABELS = ("ci_fe", "tiii_fe")
"""Labels measured from one ionisation stage (C I, Ti II): used only when the primary
label of the same element (c_fe, ti_fe) is absent or NaN."""

ALPHA_LABELS = ("mg_fe", "si_fe", "ca_fe", "ti_fe")
"""Labels averaged into [alpha/Fe] (MARCS alpha variant, Turbospectrum's ALPHA/Fe)."""


def atomic_number(label: str) -> int:
    """Atomic number of an ``<x>_fe`` label; raises KeyError naming the label."""
    try:
        return LABEL_ATOMIC_NUMBER[label]
    except KeyError:
        raise KeyError(f"no element known for label {label!r}") from None


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def absolute_abundances(fe_h: float, x_fe: Mapping[str, float]) -> dict[int, float]:
    """Absolute abundances A(X) (dex) from [Fe/H] and a mapping of ``<x>_fe`` labels.

    Returns {atomic number: A(X)} for iron and every element with a finite label; a
    secondary label (ci_fe, tiii_fe) counts only when its primary is missing or NaN.
    """
    if not _finite(fe_h):
        raise ValueError(f"[Fe/H] must be finite, got {fe_h}")
    result = {IRON: SOLAR_ABUNDANCES[IRON] + fe_h}
    ordered = sorted(x_fe, key=lambda label: label in SECONDARY_LABELS)
    for label in ordered:
        value = x_fe[label]
        if not _finite(value):
            continue
        z = atomic_number(label)
        if z in result:
            continue  # primary label already set this element
        result[z] = SOLAR_ABUNDANCES[z] + fe_h + float(value)
    return result


def alpha_over_iron(x_fe: Mapping[str, float]) -> float:
    """[alpha/Fe] (dex): mean of the finite Mg, Si, Ca, Ti labels, 0 when none."""
    values = [float(x_fe[label]) for label in ALPHA_LABELS if label in x_fe and _finite(x_fe[label])]
    return sum(values) / len(values) if values else 0.0
