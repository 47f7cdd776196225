"""A tiny fake sdss-mangadap wheel: MILES-like and STELIB-like spectra made in the test."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from desi_abundances.real_stars.libraries import CONFIG, TEMPLATES

LINE_AIR = 5000.0   # Angstrom (air): a narrow absorption line in every fake spectrum


def _spectrum(start: float, step: float, n: int, scale: float = 1.0) -> np.ndarray:
    wave = start + np.arange(n) * step
    return scale * (1.0 - 0.6 * np.exp(-0.5 * ((wave - LINE_AIR) / 1.0) ** 2))


def _fits_bytes(flux: np.ndarray, cards: dict) -> bytes:
    hdu = fits.PrimaryHDU(flux)
    for key, value in cards.items():
        hdu.header[key] = value
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()


def make_wheel(directory: Path, n_miles: int = 3, n_stelib: int = 2) -> Path:
    """``sdss_mangadap-4.5.0-py3-none-any.whl`` with MILES (air, 3540.5 + 0.9 A x 4300,
    labels in MILES_params.db incl. a 99999 missing Teff) and STELIB (air, 3200 + 1 A x
    6700, zero flux below 3300 A, labels in the headers, one '-')."""
    path = Path(directory) / "sdss_mangadap-4.5.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        db = ["#MILES  Teff  log g   [Fe/H]"]
        for i in range(1, n_miles + 1):
            flux = _spectrum(3540.5, 0.9, 4300)
            wheel.writestr(f"{TEMPLATES}/miles/MILES_res2.50_star_m{i:04d}V.fits",
                           _fits_bytes(flux, {"CRPIX1": 1, "CRVAL1": 3540.5, "CDELT1": 0.9,
                                              "FWHM": 2.5}))
            teff = 99999 if i == n_miles else 5000 + 100 * i
            db.append(f"  {i:04d}  {teff}   4.50    -0.{i}0")
        db.append("  022.  7950   3.95     0.35")  # a malformed id, as in v9.1
        wheel.writestr(f"{TEMPLATES}/miles/MILES_params.db", "\n".join(db) + "\n")
        wheel.writestr(f"{TEMPLATES}/miles/omit/MILES_res2.50_star_m0970V.fits", b"skip me")
        wheel.writestr(f"{CONFIG}/miles.ini", "[default]\n key = MILES\n sres_ext\n in_vacuum = False\n")
        wheel.writestr(f"{CONFIG}/stelib.ini", "[default]\n key = STELIB\n in_vacuum = False\n")
        for i in range(n_stelib):
            flux = _spectrum(3200.0, 1.0, 6700, scale=3e-14)
            flux[:100] = 0.0
            cards = {"CRPIX1": 1.0, "CRVAL1": 3200.0, "CDELT1": 1.0, "CTYPE1": "LINEAR",
                     "TEFF": 5800 + i, "LOG_G": 4.4, "FE_H": "-" if i else 0.1}
            wheel.writestr(f"{TEMPLATES}/stelib/STELIB_v3.2_HD{i:06d}.fits", _fits_bytes(flux, cards))
    return path
