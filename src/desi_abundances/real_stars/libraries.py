"""Readers of the MILES and STELIB libraries inside the sdss-mangadap wheel (read straight
from the zip, nothing extracted). Wavelengths in Angstrom as the library gives them (air or
vacuum: :func:`wavelengths_in_vacuum` tells), flux in the library's units."""
from __future__ import annotations

import configparser
import io
import logging
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits

logger = logging.getLogger(__name__)

TEMPLATES = "mangadap/data/spectral_templates"
CONFIG = "mangadap/config/spectral_templates"
LABEL_COLUMNS = ("TEFF", "LOGG", "FE_H")
MILES_MISSING = {"TEFF": 99999.0, "LOGG": 9999.0, "FE_H": 9999.0}
"""MILES_params.db writes 99999 (Teff) and 9999 (log g, [Fe/H]) for missing values."""


class LibraryError(ValueError):
    """A library in the wheel cannot be read; the message names the wheel and member."""


@dataclass
class Library:
    """The spectra and labels of one stellar library.

    Attributes:
        name: ``MILES`` or ``STELIB``.
        ids: (n,) star names (``m0001`` for MILES, the STARIDEN for STELIB).
        wavelength: n arrays, Angstrom, air or vacuum as ``in_vacuum`` says.
        flux: n arrays, the library's flux (MILES normalised, STELIB erg/s/cm2/A).
        labels: DataFrame TEFF (K), LOGG, FE_H (dex); NaN = missing.
        in_vacuum: True when the wavelengths are vacuum.
        vacuum_source: where ``in_vacuum`` came from (header keyword or the wheel's config).
        fwhm_angstrom: the library's spectral resolution (FWHM, Angstrom).
    """

    name: str
    ids: np.ndarray
    wavelength: list[np.ndarray]
    flux: list[np.ndarray]
    labels: pd.DataFrame
    in_vacuum: bool
    vacuum_source: str
    fwhm_angstrom: float
    header_notes: dict[str, Any] = field(default_factory=dict)


def open_wheel(path: str | Path) -> zipfile.ZipFile:
    """The wheel as a zip (LibraryError naming it when absent or not a zip)."""
    path = Path(path)
    if not path.exists():
        raise LibraryError(f"{path}: wheel not found (fetch it with `pip download --no-deps "
                           "sdss-mangadap==4.5.0 -d build/real_stars`, or `make real-stars`)")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise LibraryError(f"{path}: not a wheel/zip ({exc})") from exc


def header_wavelength(header: fits.Header) -> np.ndarray:
    """Linear wavelength grid of a 1-D FITS spectrum (CRVAL1, CDELT1 or CD1_1, CRPIX1)."""
    step = header.get("CDELT1", header.get("CD1_1"))
    n = int(header["NAXIS1"])
    return float(header["CRVAL1"]) + (np.arange(n) + 1.0 - float(header.get("CRPIX1", 1.0))) * float(step)


def header_in_vacuum(header: fits.Header) -> bool | None:
    """True/False when the header says vacuum/air (AIRORVAC, VACUUM, CTYPE1 WAVE/AWAV,
    WAT1_001 text), None when it is silent."""
    airorvac = str(header.get("AIRORVAC", "")).strip().lower()
    if airorvac in ("air", "vac", "vacuum"):
        return airorvac != "air"
    if "VACUUM" in header:
        return bool(header["VACUUM"])
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    if ctype in ("AWAV", "WAVE"):
        return ctype == "WAVE"
    text = " ".join(str(header.get(k, "")) for k in ("WAT1_001", "WAT0_001")).lower()
    if "vacuum" in text or "air" in text:
        return "vacuum" in text
    return None


def config_in_vacuum(wheel: zipfile.ZipFile, library: str) -> bool | None:
    """``in_vacuum`` of the wheel's ``mangadap/config/spectral_templates/<library>.ini``."""
    member = f"{CONFIG}/{library.lower()}.ini"
    if member not in wheel.namelist():
        return None
    parser = configparser.ConfigParser(allow_no_value=True)
    parser.read_string(wheel.read(member).decode())
    value = parser["default"].get("in_vacuum")
    return None if value is None else value.strip().lower() in ("true", "1", "yes")


def resolve_vacuum(headers: list[fits.Header], wheel: zipfile.ZipFile, library: str) -> tuple[bool, str]:
    """Air or vacuum for a library: the headers when they say (all alike), else the wheel's
    config, else air (both libraries are published in air) with a warning."""
    said = {header_in_vacuum(h) for h in headers} - {None}
    if len(said) > 1:
        raise LibraryError(f"{library}: headers disagree on air/vacuum wavelengths")
    if said:
        value = said.pop()
        return value, f"header ({'vacuum' if value else 'air'})"
    value = config_in_vacuum(wheel, library)
    if value is not None:
        return value, f"headers silent; {CONFIG}/{library.lower()}.ini in_vacuum={value}"
    logger.warning("%s: nothing says air or vacuum; taking air (as published)", library)
    return False, "nothing says; air assumed (as published)"


def _fits_member(wheel: zipfile.ZipFile, member: str) -> fits.PrimaryHDU:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # STELIB headers have non-standard cards (APNUM1)
        hdul = fits.open(io.BytesIO(wheel.read(member)))
        hdul.verify("silentfix")
        return hdul[0]


def _members(wheel: zipfile.ZipFile, folder: str, pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return sorted(n for n in wheel.namelist()
                  if n.startswith(f"{TEMPLATES}/{folder}/") and regex.search(n.rsplit("/", 1)[-1])
                  and "/omit/" not in n)


def miles_labels(text: str) -> pd.DataFrame:
    """Labels of ``MILES_params.db`` indexed by ``mNNNN``; 99999/9999 -> NaN. Rows whose id
    is not four digits (v9.1 has one, ``022.``: HD044691A, probably m0221) or repeat an id
    are skipped (their stars then have no labels)."""
    rows, skipped = {}, []
    for line in text.splitlines():
        parts = line.split()
        if not parts or line.lstrip().startswith("#"):
            continue
        if len(parts) != 4 or not re.fullmatch(r"\d{4}", parts[0]) or f"m{parts[0]}" in rows:
            skipped.append(parts[0])
            continue
        rows[f"m{parts[0]}"] = [float(v) for v in parts[1:]]
    if skipped:
        logger.warning("MILES_params.db: skipped %d row(s) with a malformed or repeated id: %s",
                       len(skipped), skipped[:5])
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(LABEL_COLUMNS))
    for column, missing in MILES_MISSING.items():
        table[column] = table[column].mask(table[column] == missing)
    return table


def read_miles(wheel: zipfile.ZipFile, max_stars: int | None = None) -> Library:
    """MILES v9.1: ``MILES_res2.50_star_mNNNNV.fits`` and the labels of ``MILES_params.db``
    (99999/9999 = missing); m0970 is in ``omit/`` upstream (truncated, artefact) and skipped."""
    members = _members(wheel, "miles", r"^MILES_res2\.50_star_m\d{4}V\.fits$")[:max_stars]
    if not members:
        raise LibraryError(f"{wheel.filename}: no MILES spectra under {TEMPLATES}/miles/")
    table = miles_labels(wheel.read(f"{TEMPLATES}/miles/MILES_params.db").decode())
    ids, waves, fluxes, headers = [], [], [], []
    for member in members:
        hdu = _fits_member(wheel, member)
        ids.append(re.search(r"_(m\d{4})V\.fits$", member).group(1))
        waves.append(header_wavelength(hdu.header))
        fluxes.append(np.asarray(hdu.data, dtype=np.float64))
        headers.append(hdu.header)
    labels = table.reindex(ids).reset_index(drop=True)
    in_vacuum, source = resolve_vacuum(headers, wheel, "miles")
    fwhm = float(headers[0].get("FWHM", 2.5))
    return Library("MILES", np.array(ids), waves, fluxes, labels, in_vacuum, source, fwhm)


def _header_float(header: fits.Header, key: str) -> float:
    try:
        return float(header.get(key))
    except (TypeError, ValueError):
        return np.nan  # STELIB writes '-' for unknown


def read_stelib(wheel: zipfile.ZipFile, max_stars: int | None = None,
                fwhm_angstrom: float = 3.4) -> Library:
    """STELIB v3.2: ``STELIB_v3.2_<star>.fits``, labels from the headers (TEFF, LOG_G, FE_H;
    '-' = missing). Zero flux marks no data. FWHM 3.4 A is the value the wheel's
    ``stelib.ini`` uses (Le Borgne et al. 2003 quote about 3 A)."""
    members = _members(wheel, "stelib", r"^STELIB_v3\.2_.+\.fits$")[:max_stars]
    if not members:
        raise LibraryError(f"{wheel.filename}: no STELIB spectra under {TEMPLATES}/stelib/")
    ids, waves, fluxes, headers, rows = [], [], [], [], []
    for member in members:
        hdu = _fits_member(wheel, member)
        ids.append(member.rsplit("/", 1)[-1][len("STELIB_v3.2_"):-len(".fits")])
        waves.append(header_wavelength(hdu.header))
        fluxes.append(np.asarray(hdu.data, dtype=np.float64))
        headers.append(hdu.header)
        rows.append([_header_float(hdu.header, k) for k in ("TEFF", "LOG_G", "FE_H")])
    labels = pd.DataFrame(rows, columns=list(LABEL_COLUMNS))
    in_vacuum, source = resolve_vacuum(headers, wheel, "stelib")
    return Library("STELIB", np.array(ids), waves, fluxes, labels, in_vacuum, source,
                   float(fwhm_angstrom))


READERS = {"miles": read_miles, "stelib": read_stelib}


def read_library(wheel: zipfile.ZipFile, name: str, max_stars: int | None = None,
                 **options: Any) -> Library:
    """One library by name (``miles`` or ``stelib``)."""
    try:
        reader = READERS[name.lower()]
    except KeyError as exc:
        raise LibraryError(f"unknown library {name!r}; known: {sorted(READERS)}") from exc
    return reader(wheel, max_stars=max_stars, **options)
