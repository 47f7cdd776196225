"""The mock survey's configuration: DESI programmes (magnitude range, exposure, stage
mix), the healpix pixels it covers, its epochs and its SPECPROD name."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DR3_EPOCH = 2016.0
"""Gaia DR3 epoch of the stars' positions (Julian year)."""
DESI_REF_EPOCH = 2015.5
"""Epoch of the DESI target positions (FIBERMAP REF_EPOCH, Julian year)."""
APOGEE_EPOCH = 2000.0
"""Epoch of the APOGEE (2MASS) positions (Julian year)."""
SPECPROD = "mock"
"""SPECPROD header keyword of the mock coadds."""


@dataclass
class Programme:
    """A DESI programme of the mock: magnitude range, exposure, stage mix."""

    name: str
    fraction: float
    g_range: tuple[float, float]
    exptime_s: float
    giant_fraction: float
    g_slope: float = 0.25
    """dN/dG ~ 10^(g_slope G) inside g_range."""


def survey_programmes(config: dict[str, Any]) -> list[Programme]:
    """The programmes of ``config["programs"]`` (backup and bright by default), in order."""
    progs = config.get("programs") or {
        "backup": {"fraction": 0.5, "g_range": [11.0, 16.0], "exptime_s": 600.0,
                   "giant_fraction": 0.62, "g_slope": 0.1},
        "bright": {"fraction": 0.5, "g_range": [16.0, 19.0], "exptime_s": 1000.0,
                   "giant_fraction": 0.25, "g_slope": 0.25},
    }
    return [Programme(name, float(p["fraction"]), tuple(p["g_range"]), float(p["exptime_s"]),
                      float(p["giant_fraction"]), float(p.get("g_slope", 0.25)))
            for name, p in progs.items()]


def stage_mix(giant_fraction: float) -> dict[str, float]:
    """Stage fractions with giants (RGB + clump, 3:1) making ``giant_fraction``."""
    rest = 1.0 - giant_fraction
    return {"giant": 0.75 * giant_fraction, "clump": 0.25 * giant_fraction,
            "dwarf": 0.72 * rest, "subgiant": 0.28 * rest}


def healpix_centres(config: dict[str, Any]) -> list[tuple[float, float]]:
    """(RA, Dec) in degrees of the healpix pixels that hold the mock survey."""
    centres = config.get("healpix_centres") or [
        [150.0, 2.0], [180.0, 30.0], [210.0, 50.0], [230.0, 10.0],
        [120.0, 60.0], [200.0, -5.0], [250.0, 40.0], [170.0, 15.0],
    ]
    return [tuple(map(float, c)) for c in centres]
