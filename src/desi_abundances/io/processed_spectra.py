"""Preprocessed spectra (:class:`~desi_abundances.spectra.Spectra`) <-> one FITS file: plain
astropy, no Kedro (the catalog wrapper is ``io.datasets.processed_spectra``).

Layout: PRIMARY (keywords MOCK, NSPEC, NPIX and PREPROC, the preprocessing settings as JSON),
WAVELENGTH (float64, Angstrom), FLUX (float32, normalised), IVAR (float32), MASK (uint8,
1 = unusable pixel) images of shape (NSPEC, NPIX), and META, the row-matched table. Written
atomically. ``meta.attrs`` carries ``is_mock`` and ``preprocessing`` both ways.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from astropy.io import fits

from desi_abundances.io.atomic import atomic_write
from desi_abundances.io.desi_coadd import read_image
from desi_abundances.io.fits_table import (
    FitsReadError,
    dataframe_to_hdu,
    open_fits,
    read_table,
)
from desi_abundances.spectra import Spectra, SpectraShapeError

MOCK_COMMENT = "from the simulated survey, not DESI"


def spectra_to_hdulist(spectra: Spectra) -> fits.HDUList:
    """The HDUs of a processed-spectra file holding ``spectra``."""
    primary = fits.PrimaryHDU()
    attrs = spectra.meta.attrs
    primary.header["MOCK"] = (bool(attrs.get("is_mock", False)), MOCK_COMMENT)
    primary.header["NSPEC"] = spectra.n_spectra
    primary.header["NPIX"] = spectra.wavelength.size
    if attrs.get("preprocessing") is not None:
        primary.header["PREPROC"] = json.dumps(attrs["preprocessing"], sort_keys=True)
    wavelength = fits.ImageHDU(np.asarray(spectra.wavelength, np.float64), name="WAVELENGTH")
    wavelength.header["BUNIT"] = "Angstrom"
    flux = fits.ImageHDU(np.asarray(spectra.flux, np.float32), name="FLUX")
    flux.header["BUNIT"] = "continuum-normalised"
    ivar = fits.ImageHDU(np.asarray(spectra.ivar, np.float32), name="IVAR")
    mask = fits.ImageHDU(spectra.mask.astype(np.uint8), name="MASK")
    mask.header["COMMENT"] = "1 = unusable pixel"
    meta = dataframe_to_hdu(spectra.meta.reset_index(drop=True), "META")
    return fits.HDUList([primary, wavelength, flux, ivar, mask, meta])


def read_processed_spectra(path: str | os.PathLike) -> Spectra:
    """Read a file written by :func:`write_processed_spectra`.

    Raises:
        FitsReadError: naming the file and the HDU at fault.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        header = hdul[0].header
        wavelength = read_image(hdul, "WAVELENGTH", path)
        flux = read_image(hdul, "FLUX", path)
        ivar = read_image(hdul, "IVAR", path)
        mask = read_image(hdul, "MASK", path).astype(bool)
        meta = read_table(hdul, "META", path)
        is_mock = bool(header.get("MOCK", False))
        preproc = header.get("PREPROC")
    try:
        spectra = Spectra(wavelength=wavelength, flux=flux, ivar=ivar, mask=mask, meta=meta)
    except SpectraShapeError as error:
        raise FitsReadError(f"{path}: inconsistent HDUs ({error})") from error
    spectra.meta.attrs["is_mock"] = is_mock
    if preproc:
        spectra.meta.attrs["preprocessing"] = json.loads(preproc)
    return spectra


def write_processed_spectra(path: str | os.PathLike, spectra: Spectra) -> None:
    """Write ``spectra`` (:func:`spectra_to_hdulist`), atomically."""
    hdulist = spectra_to_hdulist(spectra)
    with atomic_write(path) as tmp:
        hdulist.writeto(tmp)
