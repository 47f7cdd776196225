"""A DESI coadd FITS file <-> :class:`~desi_abundances.spectra.CoaddSpectra`: plain astropy,
no Kedro (the catalog wrapper is ``io.datasets.desi_coadd.DesiCoaddDataset``).

The layout is DESI's (desidatamodel ``healpix/.../coadd-*.fits``): PRIMARY, FIBERMAP,
EXP_FIBERMAP, then per arm X in B, R, Z: X_WAVELENGTH, X_FLUX, X_IVAR, X_MASK,
[X_RESOLUTION], and SCORES. The file is memory-mapped and each image converted from FITS's
big-endian order to native order in one copy (``benchmarks/coadd_reader.py``: as fast as
the hand-written byte-offset reader this replaced).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from astropy.io import fits

from desi_abundances.desi.grids import ARMS, FLUX_UNIT
from desi_abundances.io.atomic import atomic_write
from desi_abundances.io.fits_table import (
    FitsReadError,
    dataframe_to_hdu,
    get_hdu,
    missing_bytes,
    open_fits,
    read_table,
)
from desi_abundances.spectra import ArmSpectra, CoaddSpectra

IVAR_UNIT = "10**+34 (s2 cm4 Angstrom2) / erg2"
"""BUNIT of IVAR images in real DESI coadds."""

MOCK_COMMENT = "mock data (desi_abundances.mock), not DESI"
"""Comment of the MOCK header keyword (fits in one 80-character card)."""

FIBERMAP_UNITS: dict[str, str] = {
    "TARGET_RA": "deg", "TARGET_DEC": "deg", "PMRA": "mas yr-1", "PMDEC": "mas yr-1",
    "REF_EPOCH": "yr", "EBV": "mag", "FLUX_G": "nanomaggy", "FLUX_R": "nanomaggy",
    "FLUX_Z": "nanomaggy", "GAIA_PHOT_G_MEAN_MAG": "mag", "GAIA_PHOT_BP_MEAN_MAG": "mag",
    "GAIA_PHOT_RP_MEAN_MAG": "mag", "PARALLAX": "mas", "COADD_EXPTIME": "s",
}
"""TUNITn written for FIBERMAP columns (those of real coadds)."""

_SKIP_HEADER_KEYS = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "COMMENT", "HISTORY", "", "CHECKSUM",
                     "DATASUM"}


def header_to_dict(header: fits.Header) -> dict[str, Any]:
    """Primary-header keywords as a plain dict (structural keywords, COMMENT/HISTORY dropped)."""
    return {key: header[key] for key in header if key not in _SKIP_HEADER_KEYS}


def read_image(hdul: fits.HDUList, name: str, path: Path,
               expected: tuple[int, ...] | None = None) -> np.ndarray:
    """Image HDU ``name`` of an open file as a plain, native-endian ndarray (one converting
    copy of the memory-mapped data; BZERO/BSCALE applied by astropy).

    Raises:
        FitsReadError: naming file and HDU: not an image, truncated, or (``expected``) of
            another shape.
    """
    hdu = get_hdu(hdul, name, path)
    if not hdu.is_image or isinstance(hdu, fits.PrimaryHDU) and hdu.header.get("NAXIS", 0) == 0:
        raise FitsReadError(f"{path}: HDU {name!r} is not an image")
    shape = tuple(hdu.shape)
    if expected is not None:
        _check_shape(path, name, shape, expected)
    short = missing_bytes(hdu, path)
    if short:
        count = int(np.prod(shape)) if shape else 0
        itemsize = abs(int(hdu.header["BITPIX"])) // 8
        raise FitsReadError(
            f"{path}: HDU {name!r} is truncated: expected {count} values of shape {shape}, "
            f"found {max(count - -(-short // itemsize), 0)}"
        )
    try:
        data = hdu.data
    except Exception as exc:
        raise FitsReadError(f"{path}: HDU {name!r} cannot be read ({exc})") from exc
    if data is None:
        return np.zeros(shape, dtype=np.float32)
    # np.array (subok=False): a plain ndarray, not an in-memory np.memmap whose every
    # slice goes through memmap.__getitem__
    return np.array(data, dtype=data.dtype.newbyteorder("="))


def _check_shape(path: Path, name: str, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    if tuple(shape) != tuple(expected):
        raise FitsReadError(f"{path}: HDU {name!r} has shape {shape}, expected {expected}")


def read_coadd(
    path: str | os.PathLike,
    arms: Sequence[str] | None = None,
    read_resolution: bool = False,
    fibermap_columns: Sequence[str] | None = None,
    read_exp_fibermap: bool = True,
    read_scores: bool = True,
) -> CoaddSpectra:
    """Read a DESI coadd file.

    Args:
        arms: arms to read (default: every arm present).
        read_resolution: read the RESOLUTION images (11x the size of FLUX; training does not
            use them).
        fibermap_columns: FIBERMAP columns to read (default all).
        read_exp_fibermap, read_scores: read those tables when present.

    Raises:
        FitsReadError: naming the file and the HDU/column at fault (missing, corrupt,
            truncated, shapes of FLUX, IVAR, MASK, WAVELENGTH and FIBERMAP that disagree).
    """
    path = Path(path)
    hdul = open_fits(path)
    try:
        header = header_to_dict(get_hdu(hdul, 0, path).header)
        fibermap = read_table(hdul, "FIBERMAP", path, fibermap_columns)
        n_rows = len(fibermap)
        names = _extnames(hdul, path)
        if arms is None:
            arms = [arm for arm in ARMS if f"{arm}_FLUX" in names]
            if not arms:
                raise FitsReadError(f"{path}: no arm found (HDU 'B_FLUX'/'R_FLUX'/'Z_FLUX' missing)")
        spectra = {}
        for arm in arms:
            wavelength = read_image(hdul, f"{arm}_WAVELENGTH", path).astype(np.float64, copy=False)
            if wavelength.ndim != 1:
                raise FitsReadError(f"{path}: HDU '{arm}_WAVELENGTH' is not 1-D ({wavelength.shape})")
            expected = (n_rows, wavelength.size)
            arrays = {}
            for kind in ("FLUX", "IVAR", "MASK"):
                arrays[kind] = read_image(hdul, f"{arm}_{kind}", path, expected)
            resolution = None
            if read_resolution:
                name = f"{arm}_RESOLUTION"
                resolution = read_image(hdul, name, path)
                if resolution.ndim != 3 or resolution.shape[0] != n_rows or \
                        resolution.shape[2] != wavelength.size:
                    raise FitsReadError(
                        f"{path}: HDU {name!r} has shape {resolution.shape}, expected "
                        f"({n_rows}, n_diagonals, {wavelength.size})"
                    )
            spectra[arm] = ArmSpectra(
                wavelength=wavelength,
                flux=arrays["FLUX"].astype(np.float32, copy=False),
                ivar=arrays["IVAR"].astype(np.float32, copy=False),
                mask=arrays["MASK"].astype(np.int32, copy=False),
                resolution=resolution,
            )
        scores = read_table(hdul, "SCORES", path) if read_scores and "SCORES" in names else None
        if scores is not None and len(scores) != n_rows:
            raise FitsReadError(f"{path}: HDU 'SCORES' has {len(scores)} rows, FIBERMAP {n_rows}")
        exp_fibermap = (
            read_table(hdul, "EXP_FIBERMAP", path)
            if read_exp_fibermap and "EXP_FIBERMAP" in names
            else None
        )
    finally:
        hdul.close()
    return CoaddSpectra(arms=spectra, fibermap=fibermap, header=header, scores=scores,
                        exp_fibermap=exp_fibermap)


def _extnames(hdul: fits.HDUList, path: Path) -> set[str]:
    try:
        hdul.readall()
    except Exception as exc:
        raise FitsReadError(f"{path}: file corrupt or truncated while scanning HDUs ({exc})") from exc
    return {str(hdu.name).upper() for hdu in hdul}


def coadd_to_hdulist(coadd: CoaddSpectra, extra_header: dict[str, Any] | None = None,
                     write_resolution: bool = True) -> fits.HDUList:
    """The HDUs of a DESI coadd file (real layout, dtypes and BUNITs) holding ``coadd``."""
    primary = fits.PrimaryHDU()
    for key, value in {**coadd.header, **(extra_header or {})}.items():
        if key == "MOCK" and not isinstance(value, (tuple, list)):
            value = (bool(value), MOCK_COMMENT)
        primary.header[key] = tuple(value) if isinstance(value, list) else value
    hdus: list[Any] = [primary, dataframe_to_hdu(coadd.fibermap, "FIBERMAP", units=FIBERMAP_UNITS)]
    if coadd.exp_fibermap is not None:
        hdus.append(dataframe_to_hdu(coadd.exp_fibermap, "EXP_FIBERMAP"))
    for arm, data in coadd.arms.items():
        wave = fits.ImageHDU(np.asarray(data.wavelength, dtype=np.float64), name=f"{arm}_WAVELENGTH")
        wave.header["BUNIT"] = "Angstrom"
        flux = fits.ImageHDU(np.asarray(data.flux, dtype=np.float32), name=f"{arm}_FLUX")
        flux.header["BUNIT"] = FLUX_UNIT
        ivar = fits.ImageHDU(np.asarray(data.ivar, dtype=np.float32), name=f"{arm}_IVAR")
        ivar.header["BUNIT"] = IVAR_UNIT
        mask = fits.ImageHDU(np.asarray(data.mask, dtype=np.int32), name=f"{arm}_MASK")
        hdus += [wave, flux, ivar, mask]
        if write_resolution and data.resolution is not None:
            hdus.append(fits.ImageHDU(np.asarray(data.resolution, dtype=np.float32),
                                      name=f"{arm}_RESOLUTION"))
    if coadd.scores is not None:
        hdus.append(dataframe_to_hdu(coadd.scores, "SCORES"))
    return fits.HDUList(hdus)


def write_coadd(path: str | os.PathLike, coadd: CoaddSpectra,
                extra_header: dict[str, Any] | None = None, write_resolution: bool = True) -> None:
    """Write ``coadd`` as a DESI coadd file (:func:`coadd_to_hdulist`), atomically."""
    hdul = coadd_to_hdulist(coadd, extra_header, write_resolution)
    with atomic_write(path) as tmp:
        hdul.writeto(tmp)
